using Microsoft.Extensions.Options;

namespace OrleansMeta.Runtime.Persistence.PostgreSql;

/// <summary>Settings of <see cref="PostgresGrainStorage"/> and <see cref="PostgresOffsetStore"/>.</summary>
public sealed class PostgresStorageOptions
{
    /// <summary>
    /// Identifies the cluster whose grain state this storage reads and writes; several clusters may share a database.
    /// Required; no default.
    /// </summary>
    public string ClusterId { get; set; } = "";

    /// <summary>
    /// The most writes (and clears) combined into one database transaction.
    /// Default: 512.
    /// </summary>
    public int MaxBatchSize { get; set; } = 512;

    /// <summary>
    /// The most batches in flight at once, each on its own connection. While all are in flight, new writes wait and
    /// go into the next batch.
    /// Default: 4.
    /// </summary>
    public int MaxConcurrentBatches { get; set; } = 4;

    /// <summary>
    /// The most of those batches that append metadata log records and have not committed yet (group commit). Every
    /// such batch holds the log's head row from its append to its commit, so they commit one after another whatever
    /// this is; appends that arrive while the limit is reached wait and share the next batch. A batch counts until its
    /// commit, not through its flush, which it shares with every batch that committed meanwhile. More than one lets a
    /// batch do its compare-and-sets while the one before it commits. A value above <see cref="MaxConcurrentBatches"/>
    /// means that many. Default: 3 (one of the default four batch slots stays free for writes without records, whatever holds the head row).
    /// </summary>
    public int MaxAppendingBatches { get; set; } = 3;

    /// <summary>
    /// The most reads combined into one statement. Reads are far cheaper per row than writes, so batches may be larger.
    /// Default: 1024.
    /// </summary>
    public int MaxReadBatchSize { get; set; } = 1024;

    /// <summary>
    /// The most read batches in flight at once, each on its own connection (besides the write batches'). While all
    /// are in flight, new reads wait and go into the next batch; when none is, a read is sent at once.
    /// Default: 4.
    /// </summary>
    public int MaxConcurrentReadBatches { get; set; } = 4;

    /// <summary>
    /// The most committed-offset entries (partitions, counted per call) combined into one database transaction by
    /// <see cref="PostgresOffsetStore"/>. One call's commits always share a transaction, so a
    /// call with more partitions than this goes alone.
    /// Default: 1024.
    /// </summary>
    public int MaxOffsetBatchSize { get; set; } = 1024;

    /// <summary>
    /// The most offset batches in flight at once, each on its own connection (besides the grain state batches'). While
    /// all are in flight, new commits wait and share the next batch, and so its commit's disk flush; when none is, a
    /// commit is sent at once. More than one lets batches be sent while the ones before them wait for their flush;
    /// PostgreSQL flushes commits that wait at once together. (Measured with 256 committers and fsync on: 2 gave
    /// 17k commits/s at p50 15 ms, 4 gave 34k/s at p50 6 ms.)
    /// Default: 4.
    /// </summary>
    public int MaxConcurrentOffsetBatches { get; set; } = 4;
}

/// <summary>Checks <see cref="PostgresStorageOptions"/> at start-up and reports every problem at once.</summary>
public sealed class PostgresStorageOptionsValidator : IValidateOptions<PostgresStorageOptions>
{
    public ValidateOptionsResult Validate(string? name, PostgresStorageOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var problems = new List<string>();
        if (string.IsNullOrWhiteSpace(options.ClusterId))
        {
            problems.Add($"{nameof(PostgresStorageOptions.ClusterId)} is required: set Meta:ClusterId (the same value on every silo of the cluster).");
        }

        if (options.MaxBatchSize < 1)
        {
            problems.Add($"{nameof(PostgresStorageOptions.MaxBatchSize)} is {options.MaxBatchSize}; it must be at least 1 (default 512).");
        }

        if (options.MaxConcurrentBatches < 1)
        {
            problems.Add($"{nameof(PostgresStorageOptions.MaxConcurrentBatches)} is {options.MaxConcurrentBatches}; it must be at least 1 (default 4) and below the connection pool's maximum size.");
        }

        if (options.MaxAppendingBatches < 1)
        {
            problems.Add($"{nameof(PostgresStorageOptions.MaxAppendingBatches)} is {options.MaxAppendingBatches}; it must be at least 1 (default 3).");
        }

        if (options.MaxReadBatchSize < 1)
        {
            problems.Add($"{nameof(PostgresStorageOptions.MaxReadBatchSize)} is {options.MaxReadBatchSize}; it must be at least 1 (default 1024).");
        }

        if (options.MaxConcurrentReadBatches < 1)
        {
            problems.Add($"{nameof(PostgresStorageOptions.MaxConcurrentReadBatches)} is {options.MaxConcurrentReadBatches}; it must be at least 1 (default 4), and together with {nameof(PostgresStorageOptions.MaxConcurrentBatches)} below the connection pool's maximum size.");
        }

        if (options.MaxOffsetBatchSize < 1)
        {
            problems.Add($"{nameof(PostgresStorageOptions.MaxOffsetBatchSize)} is {options.MaxOffsetBatchSize}; it must be at least 1 (default 1024).");
        }

        if (options.MaxConcurrentOffsetBatches < 1)
        {
            problems.Add($"{nameof(PostgresStorageOptions.MaxConcurrentOffsetBatches)} is {options.MaxConcurrentOffsetBatches}; it must be at least 1 (default 4), and together with the other batch limits below the connection pool's maximum size.");
        }

        return problems.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(problems);
    }
}

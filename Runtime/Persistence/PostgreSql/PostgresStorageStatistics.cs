namespace OrleansMeta.Runtime.Persistence.PostgreSql;

/// <summary>Running totals of a <see cref="PostgresGrainStorage"/>, for metrics, benchmarks and tests.</summary>
public sealed class PostgresStorageStatistics
{
    private long _transactions;
    private long _writes;
    private long _conflicts;

    /// <summary>Batches committed: each is one transaction and one round trip carrying one or more writes.</summary>
    public long Transactions => Interlocked.Read(ref _transactions);

    /// <summary>Writes and clears sent to the database (rows attempted), whether they won or conflicted.</summary>
    public long Writes => Interlocked.Read(ref _writes);

    /// <summary>Writes and clears rejected because storage held a different version.</summary>
    public long Conflicts => Interlocked.Read(ref _conflicts);

    internal void RecordBatch(int writes, int conflicts)
    {
        Interlocked.Increment(ref _transactions);
        Interlocked.Add(ref _writes, writes);
        Interlocked.Add(ref _conflicts, conflicts);
    }
}

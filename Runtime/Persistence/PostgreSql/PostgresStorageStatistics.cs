namespace OrleansMeta.Runtime.Persistence.PostgreSql;

/// <summary>Running totals of a <see cref="PostgresGrainStorage"/>, for metrics, benchmarks and tests.</summary>
public sealed class PostgresStorageStatistics
{
    private long _transactions;
    private long _writes;
    private long _conflicts;
    private long _fenced;
    private long _records;
    private long _appendingTransactions;
    private long _flushes;
    private long _readBatches;
    private long _reads;

    /// <summary>Batches committed: each is one transaction and one round trip carrying one or more writes.</summary>
    public long Transactions => Interlocked.Read(ref _transactions);

    /// <summary>Writes and clears sent to the database (rows attempted), whether they won or conflicted.</summary>
    public long Writes => Interlocked.Read(ref _writes);

    /// <summary>Writes and clears rejected because storage held a different version of their own row.</summary>
    public long Conflicts => Interlocked.Read(ref _conflicts);

    /// <summary>Writes rejected because a fence row had moved on.</summary>
    public long Fenced => Interlocked.Read(ref _fenced);

    /// <summary>Metadata log records appended by committed writes.</summary>
    public long RecordsAppended => Interlocked.Read(ref _records);

    /// <summary>
    /// Batches committed that appended at least one record: each took the log's head row once. Records appended per
    /// such batch (<see cref="RecordsAppended"/> / this) is how well appends share commits.
    /// </summary>
    public long AppendingTransactions => Interlocked.Read(ref _appendingTransactions);

    /// <summary>
    /// Durability transactions that made appending batches durable, each one WAL flush shared by every batch that
    /// committed while the one before it was in flight: <see cref="AppendingTransactions"/> / this is how well batches
    /// share flushes.
    /// </summary>
    public long Flushes => Interlocked.Read(ref _flushes);

    /// <summary>Read statements answered: each is one round trip carrying one or more reads.</summary>
    public long ReadBatches => Interlocked.Read(ref _readBatches);

    /// <summary>Reads answered by the database, whether or not their row existed; reads cancelled before they were sent are not counted.</summary>
    public long Reads => Interlocked.Read(ref _reads);

    internal void RecordBatch(int writes, int conflicts, int fenced, int records)
    {
        Interlocked.Add(ref _fenced, fenced);
        Interlocked.Add(ref _records, records);
        if (records > 0)
        {
            Interlocked.Increment(ref _appendingTransactions);
        }

        Interlocked.Increment(ref _transactions);
        Interlocked.Add(ref _writes, writes);
        Interlocked.Add(ref _conflicts, conflicts);
    }

    internal void RecordFlush() => Interlocked.Increment(ref _flushes);

    internal void RecordReadBatch(int reads)
    {
        Interlocked.Add(ref _reads, reads);
        Interlocked.Increment(ref _readBatches);
    }
}

using Microsoft.Extensions.Options;

namespace OrleansMeta.Grains.Metadata;

/// <summary>Snapshots of the metadata image and retention of the metadata log (docs/metadata-log.md). Only the silo
/// that hosts the controller writes snapshots and deletes old records; every silo loads snapshots at start.</summary>
public sealed class MetadataSnapshotOptions
{
    public const string SectionName = "Meta:Snapshots";

    /// <summary>Whether this silo writes snapshots and deletes old records when it hosts the controller. Loading
    /// snapshots at start does not depend on it. Default: true.</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>A snapshot is written once the image is this many records past the newest one. A starting silo replays
    /// at most about this many records after loading the snapshot (about a second's work per 100k on a small machine,
    /// BENCHMARKS.md), and a 1M-partition snapshot costs a second or two of one core to write. Default: 100,000.</summary>
    public long RecordsBetweenSnapshots { get; set; } = 100_000;

    /// <summary>How often the writer checks whether a snapshot is due and runs retention. Default: 10 seconds.</summary>
    public TimeSpan CheckInterval { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>How many snapshots are kept (the newest ones). Retention keeps every record after the oldest kept
    /// snapshot, so a damaged newest snapshot falls back to the one before it. Default: 2.</summary>
    public int SnapshotsToKeep { get; set; } = 2;

    /// <summary>Records written less than this long ago are kept even below the snapshots, so that watches and audits
    /// can read back that far. Zero deletes everything the snapshots cover. Default: 24 hours.</summary>
    public TimeSpan RetentionWindow { get; set; } = TimeSpan.FromHours(24);

    /// <summary>The most records one retention statement deletes (each statement is its own short transaction).
    /// Default: 10,000.</summary>
    public int RetentionBatchSize { get; set; } = 10_000;
}

/// <summary>Lists every problem with <see cref="MetadataSnapshotOptions"/> at start-up.</summary>
public sealed class MetadataSnapshotOptionsValidator : IValidateOptions<MetadataSnapshotOptions>
{
    public ValidateOptionsResult Validate(string? name, MetadataSnapshotOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var section = MetadataSnapshotOptions.SectionName;
        var problems = new List<string>();
        if (options.RecordsBetweenSnapshots < 1)
        {
            problems.Add($"{section}:RecordsBetweenSnapshots is {options.RecordsBetweenSnapshots}; it must be at least 1 (default 100000).");
        }

        if (options.CheckInterval <= TimeSpan.Zero)
        {
            problems.Add($"{section}:CheckInterval must be positive, e.g. 00:00:10 (the default).");
        }

        if (options.SnapshotsToKeep < 1)
        {
            problems.Add($"{section}:SnapshotsToKeep is {options.SnapshotsToKeep}; it must be at least 1 (default 2).");
        }

        if (options.RetentionWindow < TimeSpan.Zero)
        {
            problems.Add($"{section}:RetentionWindow must be zero or positive, e.g. 1.00:00:00 (24 hours, the default).");
        }

        if (options.RetentionBatchSize is < 1 or > 100_000)
        {
            problems.Add($"{section}:RetentionBatchSize is {options.RetentionBatchSize}; it must be between 1 and 100000 (default 10000), so that no delete holds many row locks or runs long.");
        }

        return problems.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(problems);
    }
}

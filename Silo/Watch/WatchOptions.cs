using Microsoft.Extensions.Options;

namespace OrleansMeta.Silo.Watch;

/// <summary>How this silo serves watch streams (<c>GET /v1/watch</c>), section <c>Meta:Watch</c>.</summary>
public sealed class WatchOptions
{
    public const string SectionName = "Meta:Watch";

    /// <summary>How often an idle stream gets a keep-alive (a comment, or a <c>progress</c> event when a filter skipped
    /// records). Default: 15 seconds.</summary>
    public TimeSpan KeepAliveInterval { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>How many recent records the silo keeps in memory for its watchers (one ring shared by all of them).
    /// Default: 16384.</summary>
    public int RingCapacity { get; set; } = 16_384;

    /// <summary>The most bytes the ring holds (records and their encoded events); older records leave first. Default: 64 MiB.</summary>
    public long RingMaxBytes { get; set; } = 64L * 1024 * 1024;

    /// <summary>How many records a watcher following the live tail may fall behind the silo's newest before it is cut off
    /// (with a <c>cut-off</c> event naming the offset to resume from). At most <see cref="RingCapacity"/>. Default: 8192.</summary>
    public int MaxLagRecords { get; set; } = 8192;

    /// <summary>How long one write to a watcher may wait for the watcher to read before the connection is dropped (its
    /// last event id says where to resume). Default: 30 seconds.</summary>
    public TimeSpan WriteTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How many records a watcher behind the ring reads from the log at a time. Default: 1000.</summary>
    public int LogPageSize { get; set; } = 1000;
}

/// <summary>Reports every problem with <see cref="WatchOptions"/> at start-up.</summary>
public sealed class WatchOptionsValidator : IValidateOptions<WatchOptions>
{
    public ValidateOptionsResult Validate(string? name, WatchOptions options)
    {
        var problems = new List<string>();
        if (options.KeepAliveInterval <= TimeSpan.Zero || options.KeepAliveInterval > TimeSpan.FromHours(1))
        {
            problems.Add($"Meta:Watch:KeepAliveInterval is {options.KeepAliveInterval}: use a positive time of at most an hour (default 00:00:15).");
        }

        if (options.RingCapacity < 1 || options.RingCapacity > 10_000_000)
        {
            problems.Add($"Meta:Watch:RingCapacity is {options.RingCapacity}: use 1 to 10000000 records (default 16384).");
        }

        if (options.RingMaxBytes < 1024 * 1024)
        {
            problems.Add($"Meta:Watch:RingMaxBytes is {options.RingMaxBytes}: use at least 1048576 (default 67108864).");
        }

        if (options.MaxLagRecords < 1 || options.MaxLagRecords > options.RingCapacity)
        {
            problems.Add($"Meta:Watch:MaxLagRecords is {options.MaxLagRecords}: use 1 to Meta:Watch:RingCapacity ({options.RingCapacity}) (default 8192).");
        }

        if (options.WriteTimeout <= TimeSpan.Zero || options.WriteTimeout > TimeSpan.FromHours(1))
        {
            problems.Add($"Meta:Watch:WriteTimeout is {options.WriteTimeout}: use a positive time of at most an hour (default 00:00:30).");
        }

        if (options.LogPageSize < 1 || options.LogPageSize > 100_000)
        {
            problems.Add($"Meta:Watch:LogPageSize is {options.LogPageSize}: use 1 to 100000 (default 1000).");
        }

        return problems.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(problems);
    }
}

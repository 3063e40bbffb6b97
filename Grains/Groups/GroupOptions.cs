using Microsoft.Extensions.Options;

namespace OrleansMeta.Grains.Groups;

/// <summary>Consumer groups (KIP-848), set per cluster.</summary>
public sealed class GroupOptions
{
    public const string SectionName = "Meta:Groups";

    /// <summary>How often members are told to heartbeat. Default: 5 seconds (Kafka's group.consumer.heartbeat.interval.ms).</summary>
    public TimeSpan HeartbeatInterval { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>How long a member may go without a heartbeat before it is removed. Default: 45 seconds
    /// (group.consumer.session.timeout.ms).</summary>
    public TimeSpan SessionTimeout { get; set; } = TimeSpan.FromSeconds(45);

    /// <summary>How long a member may take to revoke partitions it was asked to give up before it is removed.
    /// Default: 5 minutes (the consumer's max.poll.interval.ms).</summary>
    public TimeSpan RebalanceTimeout { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>How often sessions and revocation deadlines are checked. Default: 1 second.</summary>
    public TimeSpan SessionCheckInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>The most members a group may have (group.consumer.max.size). Default: 1000.</summary>
    public int MaxSize { get; set; } = 1000;

    /// <summary>The assignor of a group whose members ask for none: <c>uniform</c> or <c>range</c>. Default: uniform.</summary>
    public string DefaultAssignor { get; set; } = "uniform";

    /// <summary>How long a committed offset is kept after its last commit once no member of the group consumes its
    /// topic (an empty group loses all its offsets this long after their last commits, and then the group itself).
    /// Default: 7 days (Kafka's offsets.retention.minutes).</summary>
    public TimeSpan OffsetsRetention { get; set; } = TimeSpan.FromDays(7);

    /// <summary>How often each group looks for expired offsets. Default: 10 minutes (offsets.retention.check.interval.ms).</summary>
    public TimeSpan OffsetsRetentionCheckInterval { get; set; } = TimeSpan.FromMinutes(10);
}

/// <summary>Lists every problem with the group settings at start-up.</summary>
public sealed class GroupOptionsValidator : IValidateOptions<GroupOptions>
{
    public ValidateOptionsResult Validate(string? name, GroupOptions options)
    {
        var problems = new List<string>();
        var section = GroupOptions.SectionName;
        if (options.HeartbeatInterval <= TimeSpan.Zero)
        {
            problems.Add($"{section}:HeartbeatInterval must be positive, e.g. 00:00:05.");
        }

        if (options.SessionTimeout <= options.HeartbeatInterval)
        {
            problems.Add($"{section}:SessionTimeout ({options.SessionTimeout}) must be longer than HeartbeatInterval ({options.HeartbeatInterval}), e.g. 00:00:45.");
        }

        if (options.RebalanceTimeout <= TimeSpan.Zero)
        {
            problems.Add($"{section}:RebalanceTimeout must be positive, e.g. 00:05:00.");
        }

        if (options.SessionCheckInterval <= TimeSpan.Zero || options.SessionCheckInterval > options.SessionTimeout)
        {
            problems.Add($"{section}:SessionCheckInterval must be positive and at most SessionTimeout ({options.SessionTimeout}).");
        }

        if (options.MaxSize < 1)
        {
            problems.Add($"{section}:MaxSize must be at least 1.");
        }

        if (options.OffsetsRetention <= TimeSpan.Zero)
        {
            problems.Add($"{section}:OffsetsRetention must be positive, e.g. 7.00:00:00 for 7 days.");
        }

        if (options.OffsetsRetentionCheckInterval <= TimeSpan.Zero)
        {
            problems.Add($"{section}:OffsetsRetentionCheckInterval must be positive, e.g. 00:10:00.");
        }

        if (options.DefaultAssignor is not ("uniform" or "range"))
        {
            problems.Add($"{section}:DefaultAssignor must be 'uniform' or 'range'; got '{options.DefaultAssignor}'.");
        }

        return problems.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(problems);
    }
}

using Microsoft.Extensions.Options;

namespace OrleansMeta.Grains;

/// <summary>Broker sessions, as in KRaft.</summary>
public sealed class BrokerOptions
{
    public const string SectionName = "Meta:Brokers";

    /// <summary>How long a broker may go without a heartbeat before it is fenced. Default: 9 seconds.</summary>
    public TimeSpan SessionTimeout { get; set; } = TimeSpan.FromSeconds(9);

    /// <summary>How often sessions are checked. Default: 250 milliseconds.</summary>
    public TimeSpan SessionCheckInterval { get; set; } = TimeSpan.FromMilliseconds(250);
}

/// <summary>The controller's background work.</summary>
public sealed class ControllerOptions
{
    public const string SectionName = "Meta:Controller";

    /// <summary>How often the controller checks every partition against broker liveness (repairs anything an
    /// interrupted controller left undone). Default: 5 seconds.</summary>
    public TimeSpan ReconcileInterval { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>How often leadership balance is checked. Default: 30 seconds (Kafka: 5 minutes).</summary>
    public TimeSpan LeaderImbalanceCheckInterval { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>A broker whose share of not-led preferred partitions exceeds this percentage triggers preferred
    /// elections. Default: 10 (Kafka's leader.imbalance.per.broker.percentage).</summary>
    public int LeaderImbalancePercentage { get; set; } = 10;

    /// <summary>Whether imbalance triggers preferred elections automatically. Default: true.</summary>
    public bool AutoLeaderRebalance { get; set; } = true;

    /// <summary>How long a decision waits for this silo's image to reach the offset it is based on. Default: 10 seconds.</summary>
    public TimeSpan ImageWaitTimeout { get; set; } = TimeSpan.FromSeconds(10);
}

/// <summary>Lists every problem with the broker and controller settings at start-up.</summary>
public sealed class MetaOptionsValidator : IValidateOptions<BrokerOptions>, IValidateOptions<ControllerOptions>
{
    public ValidateOptionsResult Validate(string? name, BrokerOptions options)
    {
        var problems = new List<string>();
        if (options.SessionTimeout <= TimeSpan.Zero)
        {
            problems.Add($"{BrokerOptions.SectionName}:SessionTimeout must be positive, e.g. 00:00:09.");
        }

        if (options.SessionCheckInterval <= TimeSpan.Zero || options.SessionCheckInterval > options.SessionTimeout)
        {
            problems.Add($"{BrokerOptions.SectionName}:SessionCheckInterval must be positive and at most SessionTimeout ({options.SessionTimeout}).");
        }

        return problems.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(problems);
    }

    public ValidateOptionsResult Validate(string? name, ControllerOptions options)
    {
        var problems = new List<string>();
        if (options.ReconcileInterval <= TimeSpan.Zero)
        {
            problems.Add($"{ControllerOptions.SectionName}:ReconcileInterval must be positive, e.g. 00:00:05.");
        }

        if (options.LeaderImbalanceCheckInterval <= TimeSpan.Zero)
        {
            problems.Add($"{ControllerOptions.SectionName}:LeaderImbalanceCheckInterval must be positive, e.g. 00:00:30.");
        }

        if (options.LeaderImbalancePercentage is < 0 or > 100)
        {
            problems.Add($"{ControllerOptions.SectionName}:LeaderImbalancePercentage must be between 0 and 100.");
        }

        if (options.ImageWaitTimeout <= TimeSpan.Zero)
        {
            problems.Add($"{ControllerOptions.SectionName}:ImageWaitTimeout must be positive.");
        }

        return problems.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(problems);
    }
}

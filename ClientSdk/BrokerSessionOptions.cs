namespace OrleansMeta.Client;

/// <summary>Settings of a <see cref="BrokerSession"/>. The session copies them when it is created; later changes have
/// no effect on it.</summary>
public sealed class BrokerSessionOptions
{
    /// <summary>The time between the starts of two heartbeats. Keep it well below the service's broker session timeout
    /// (9 seconds by default) so that a lost heartbeat or two do not fence the broker. Default: 2 seconds (Kafka's
    /// <c>broker.heartbeat.interval.ms</c>).</summary>
    public TimeSpan HeartbeatInterval { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>How long one heartbeat or registration may take, the client's own retries included, before the session
    /// gives up on it and counts it as a retryable failure. Past two heartbeat intervals the broker is nearer to losing
    /// its session than to its next heartbeat, so a fresh call has the better chance. A silo that hangs is left only when
    /// the client's <see cref="MetaClientOptions.RequestTimeout"/> passes, so give a broker's client a request timeout
    /// below this. Default: 4 seconds.</summary>
    public TimeSpan CallTimeout { get; set; } = TimeSpan.FromSeconds(4);

    /// <summary>The delay after a first retryable failure (silo unreachable, timeout, 503...); it doubles with each
    /// further failure in a row, with jitter, and never exceeds <see cref="HeartbeatInterval"/>. Default: 100 milliseconds.</summary>
    public TimeSpan RetryBaseDelay { get; set; } = TimeSpan.FromMilliseconds(100);

    /// <summary>How long <see cref="BrokerSession.ShutDownAsync"/> keeps asking for a controlled shutdown before it gives
    /// up and stops the session anyway. Default: 30 seconds.</summary>
    public TimeSpan ControlledShutdownTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Reads the highest metadata offset the broker has applied; called before every heartbeat, on the
    /// session's loop, so it must be quick and thread-safe. The service unfences the broker once this reaches the
    /// offset of its registration. An exception thrown here faults the session. Default: null, and the session then
    /// reports the newest offset the service has told it (its registration's, then each heartbeat answer's): right for
    /// a broker that reads metadata only through the API, and so is as current as its last answer.</summary>
    public Func<long>? AppliedMetadataOffset { get; set; }

    private static readonly TimeSpan MaxDuration = TimeSpan.FromMilliseconds(int.MaxValue);

    internal BrokerSessionOptions Copy() => (BrokerSessionOptions)MemberwiseClone();

    /// <summary>Every problem with these options, each a sentence that says how to fix it; empty when valid.</summary>
    internal List<string> Validate()
    {
        var problems = new List<string>();
        CheckPositive(problems, nameof(HeartbeatInterval), HeartbeatInterval);
        CheckPositive(problems, nameof(CallTimeout), CallTimeout);
        CheckPositive(problems, nameof(ControlledShutdownTimeout), ControlledShutdownTimeout);
        if (RetryBaseDelay < TimeSpan.Zero || RetryBaseDelay > MaxDuration)
        {
            problems.Add($"RetryBaseDelay is {RetryBaseDelay}: it must be between zero and {MaxDuration}.");
        }

        return problems;
    }

    private static void CheckPositive(List<string> problems, string name, TimeSpan value)
    {
        if (value <= TimeSpan.Zero || value > MaxDuration)
        {
            problems.Add($"{name} is {value}: it must be positive and at most {MaxDuration}.");
        }
    }
}

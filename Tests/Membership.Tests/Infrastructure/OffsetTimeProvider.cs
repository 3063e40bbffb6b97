namespace OrleansMeta.Membership.Tests.Infrastructure;

/// <summary>A silo clock that is far off: wall-clock time is shifted, timers and elapsed time run normally.</summary>
public sealed class OffsetTimeProvider(TimeSpan offset) : TimeProvider
{
    public override DateTimeOffset GetUtcNow() => System.GetUtcNow() + offset;
}

using Microsoft.Extensions.Logging;

namespace OrleansMeta.Runtime.Cluster.PostgreSql;

public sealed partial class PostgresClusterMembership
{
    [LoggerMessage(EventId = 300, Level = LogLevel.Information, Message = "Silo {Self} registered as Joining in cluster '{ClusterId}'")]
    private static partial void LogRegistered(ILogger logger, SiloAddress self, string clusterId);

    [LoggerMessage(EventId = 301, Level = LogLevel.Information, Message = "Silo {Self} joined as Active at membership version {Version} ({ActiveCount} active)")]
    private static partial void LogJoined(ILogger logger, SiloAddress self, long version, int activeCount);

    [LoggerMessage(EventId = 302, Level = LogLevel.Warning, Message = "Silo {Self} is waiting to join: these Active silos do not answer probes but still heartbeat: {Silent}")]
    private static partial void LogJoinWaiting(ILogger logger, SiloAddress self, string silent);

    [LoggerMessage(EventId = 303, Level = LogLevel.Error, Message = "Silo {Self} failed to join the cluster")]
    private static partial void LogJoinFailed(ILogger logger, SiloAddress self, Exception exception);

    [LoggerMessage(EventId = 304, Level = LogLevel.Debug, Message = "Membership view {Version}: {ActiveCount} active of {Count} rows")]
    private static partial void LogViewChanged(ILogger logger, long version, int activeCount, int count);

    [LoggerMessage(EventId = 305, Level = LogLevel.Error, Message = "A ViewChanged handler failed on view {Version}")]
    private static partial void LogViewChangedHandlerFailed(ILogger logger, long version, Exception exception);

    [LoggerMessage(EventId = 306, Level = LogLevel.Debug, Message = "Lost the membership compare-and-set at version {Version}; re-reading and deciding again")]
    private static partial void LogLostCompareAndSet(ILogger logger, long version);

    [LoggerMessage(EventId = 307, Level = LogLevel.Debug, Message = "Probe of {Target} missed ({Missed} in a row)")]
    private static partial void LogProbeMissed(ILogger logger, SiloAddress target, int missed);

    [LoggerMessage(EventId = 308, Level = LogLevel.Warning, Message = "Voting {Target} dead: {Votes} of {Needed} needed fresh votes with this one")]
    private static partial void LogVoting(ILogger logger, SiloAddress target, int votes, int needed);

    [LoggerMessage(EventId = 309, Level = LogLevel.Warning, Message = "Declared {Target} dead at membership version {Version}")]
    private static partial void LogDeclaredDead(ILogger logger, SiloAddress target, long version);

    [LoggerMessage(EventId = 310, Level = LogLevel.Warning, Message = "Declaring {Target} dead: {Reason}")]
    private static partial void LogDeclaringDead(ILogger logger, SiloAddress target, string reason);

    [LoggerMessage(EventId = 311, Level = LogLevel.Critical, Message = "Silo {Self} reads itself Dead in the membership table of cluster '{ClusterId}': its peers have declared it dead and may already host its grains. It stops serving now and the application is stopping; restart it to join as a new generation")]
    private static partial void LogReadSelfDead(ILogger logger, SiloAddress self, string clusterId);

    [LoggerMessage(EventId = 312, Level = LogLevel.Warning, Message = "Membership {Loop} round failed; retrying on the next round")]
    private static partial void LogLoopFailed(ILogger logger, string loop, Exception exception);

    [LoggerMessage(EventId = 313, Level = LogLevel.Information, Message = "Silo {Self} is ShuttingDown; peers were told")]
    private static partial void LogLeaving(ILogger logger, SiloAddress self);

    [LoggerMessage(EventId = 314, Level = LogLevel.Information, Message = "Silo {Self} left the cluster (Dead); peers were told")]
    private static partial void LogLeft(ILogger logger, SiloAddress self);

    [LoggerMessage(EventId = 315, Level = LogLevel.Warning, Message = "Could not mark this silo {Status} on the way out; peers will find out by probing")]
    private static partial void LogLeaveFailed(ILogger logger, SiloStatus status, Exception exception);

    [LoggerMessage(EventId = 316, Level = LogLevel.Critical, Message = "The membership {Loop} loop stopped unexpectedly")]
    private static partial void LogLoopCrashed(ILogger logger, string loop, Exception exception);

    [LoggerMessage(EventId = 317, Level = LogLevel.Critical, Message = "Silo {Self} has not been able to heartbeat for more than {Stale}: peers may have declared it dead, so it stops owning grains and reports not ready until the membership table answers again")]
    private static partial void LogIsolated(ILogger logger, SiloAddress self, TimeSpan stale);

    [LoggerMessage(EventId = 318, Level = LogLevel.Warning, Message = "Silo {Self} reaches the membership table again and is alive in it; serving resumes")]
    private static partial void LogReconnected(ILogger logger, SiloAddress self);

    [LoggerMessage(EventId = 319, Level = LogLevel.Warning, Message = "Not voting {Target} dead: in the same probe round this silo reached {Reached} of the {Witnesses} other active silos, and a vote needs more than half of them, so this silo may be the one cut off; a silo that really died is declared dead by the others' votes, or once its heartbeat is stale")]
    private static partial void LogNotVoting(ILogger logger, SiloAddress target, int reached, int witnesses);

    [LoggerMessage(EventId = 320, Level = LogLevel.Information, Message = "Withdrew this silo's vote against {Target}: it answers probes again")]
    private static partial void LogVoteWithdrawn(ILogger logger, SiloAddress target);

    [LoggerMessage(EventId = 130, Level = LogLevel.Information, Message = "A silo declared dead may still hold its ownership lease for {Remaining}; waiting before activating a grain that keeps its truth in memory")]
    private static partial void LogWaitingForLease(ILogger logger, TimeSpan remaining);

    [LoggerMessage(EventId = 136, Level = LogLevel.Debug, Message = "Grain {Grain} waits for silo {Silo}, which owned it until this silo joined or is leaving, to release it")]
    private static partial void LogWaitingForPreviousOwner(ILogger logger, GrainId grain, SiloAddress silo);

    [LoggerMessage(EventId = 140, Level = LogLevel.Warning, Message = "Grain {Grain} waited {Waited} for silo {Silo}, which owned it until this silo joined, to release it; its calls waited as long")]
    private static partial void LogSlowHandOver(ILogger logger, GrainId grain, SiloAddress silo, TimeSpan waited);

    [LoggerMessage(EventId = 131, Level = LogLevel.Information, Message = "Silo {Silo} waits before joining until {Gate}")]
    private static partial void LogJoinGate(ILogger logger, SiloAddress silo, string gate);

    [LoggerMessage(EventId = 139, Level = LogLevel.Warning, Message = "Could not ask silo {Silo} whether it has released grain {Grain}; waiting for its row to leave Active or turn Dead, or its heartbeat to go stale, instead")]
    private static partial void LogReleaseAskFailed(ILogger logger, GrainId grain, SiloAddress silo, Exception? exception);

    [LoggerMessage(EventId = 137, Level = LogLevel.Information, Message = "Silo {Silo} is leaving; before it marks itself Dead it waits until {Drain}")]
    private static partial void LogLeaveDrain(ILogger logger, SiloAddress silo, string drain);

    [LoggerMessage(EventId = 138, Level = LogLevel.Warning, Message = "Silo {Silo} goes on leaving although it could not wait until {Drain} (Meta:Membership:LeaveDrainTimeout, or the host's shutdown timeout, ran out); a call still arriving may fail and be retried by its caller")]
    private static partial void LogLeaveDrainTimedOut(ILogger logger, SiloAddress silo, string drain);
}

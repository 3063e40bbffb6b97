using Microsoft.Extensions.Logging;

namespace OrleansMeta.Runtime.Activation;

internal sealed partial class GrainActivation
{
    private static partial class Log
    {
        [LoggerMessage(1000, LogLevel.Debug, "Activated grain {GrainId}")]
        public static partial void Activated(ILogger logger, GrainId grainId);

        [LoggerMessage(1001, LogLevel.Warning, "Activation of grain {GrainId} failed")]
        public static partial void ActivationFailed(ILogger logger, Exception exception, GrainId grainId);

        [LoggerMessage(1002, LogLevel.Debug, "Deactivated grain {GrainId} ({Reason})")]
        public static partial void Deactivated(ILogger logger, GrainId grainId, DeactivationReason reason);

        [LoggerMessage(1004, LogLevel.Debug, "Grain {GrainId} is not this silo's in its newest view; its activation did not start and its calls go to the owner")]
        public static partial void NotOwner(ILogger logger, GrainId grainId);

        [LoggerMessage(1003, LogLevel.Warning, "OnDeactivateAsync of grain {GrainId} ({Reason}) failed or timed out; the activation is dropped anyway")]
        public static partial void DeactivationFailed(ILogger logger, Exception exception, GrainId grainId, DeactivationReason reason);
    }
}

using Microsoft.Extensions.Logging;

namespace OrleansMeta.Runtime.Timers;

internal static partial class TimerLog
{
    [LoggerMessage(1100, LogLevel.Warning, "Timer callback of grain {GrainId} failed; the timer keeps running")]
    public static partial void CallbackFailed(ILogger logger, Exception exception, GrainId grainId);
}

using Microsoft.Extensions.Logging;

namespace OrleansMeta.Runtime.Persistence.PostgreSql;

public sealed partial class PostgresOffsetStore
{
    [LoggerMessage(EventId = 120, Level = LogLevel.Error, Message = "An offset commit batch of {Count} call(s) failed; every call in it has an unknown outcome")]
    private static partial void LogBatchFailed(ILogger logger, int count, Exception exception);

    [LoggerMessage(EventId = 121, Level = LogLevel.Warning, Message = "An offset commit batch of {Rows} row(s) was rolled back (attempt {Attempt}, SQLSTATE {SqlState}); retrying")]
    private static partial void LogBatchRetried(ILogger logger, int rows, int attempt, string sqlState);

    [LoggerMessage(EventId = 122, Level = LogLevel.Critical, Message = "The offset batch committer stopped unexpectedly; waiting commits were failed")]
    private static partial void LogCommitterFailed(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 124, Level = LogLevel.Warning, Message = "Compacting the offsets of {Count} group(s) failed; their next commit tries again")]
    private static partial void LogCompactionFailed(ILogger logger, int count, Exception exception);

    [LoggerMessage(EventId = 123, Level = LogLevel.Warning, Message = "Deleting offsets of group {GroupId} was rolled back (attempt {Attempt}, SQLSTATE {SqlState}); retrying")]
    private static partial void LogDeleteRetried(ILogger logger, string groupId, int attempt, string sqlState);
}

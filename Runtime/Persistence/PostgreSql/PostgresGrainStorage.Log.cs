using Microsoft.Extensions.Logging;

namespace OrleansMeta.Runtime.Persistence.PostgreSql;

public sealed partial class PostgresGrainStorage
{
    [LoggerMessage(EventId = 100, Level = LogLevel.Error, Message = "A grain state batch of {Count} write(s) failed; every write in it failed")]
    private static partial void LogBatchFailed(ILogger logger, int count, Exception exception);

    [LoggerMessage(EventId = 101, Level = LogLevel.Warning, Message = "A grain state batch of {Count} write(s) was rolled back (attempt {Attempt}, SQLSTATE {SqlState}); retrying")]
    private static partial void LogBatchRetried(ILogger logger, int count, int attempt, string sqlState);

    [LoggerMessage(EventId = 102, Level = LogLevel.Critical, Message = "The grain state batch writer stopped unexpectedly; waiting writes were failed")]
    private static partial void LogWriterFailed(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 103, Level = LogLevel.Error, Message = "A grain state read batch of {Count} read(s) failed; every read in it failed")]
    private static partial void LogReadBatchFailed(ILogger logger, int count, Exception exception);

    [LoggerMessage(EventId = 104, Level = LogLevel.Critical, Message = "The grain state batch reader stopped unexpectedly; waiting reads were failed")]
    private static partial void LogReaderFailed(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 105, Level = LogLevel.Debug, Message = "Making the metadata log durable up to its head failed; retrying in a second")]
    private static partial void LogKeeperFailed(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 106, Level = LogLevel.Debug, Message = "Waking metadata log readers failed; they find the new records on their next poll")]
    private static partial void LogNotifyFailed(ILogger logger, Exception exception);
}

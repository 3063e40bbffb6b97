using Microsoft.Extensions.Logging;
using Xunit.Abstractions;

namespace OrleansMeta.Membership.Tests.Infrastructure;

/// <summary>Writes a silo's log lines to the test's output, prefixed with the silo's name.</summary>
public sealed class TestOutputLoggerProvider(ITestOutputHelper output, string silo) : ILoggerProvider
{
    public ILogger CreateLogger(string categoryName) => new Logger(output, silo, categoryName[(categoryName.LastIndexOf('.') + 1)..]);

    public void Dispose()
    {
    }

    private sealed class Logger(ITestOutputHelper output, string silo, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Information;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (!IsEnabled(logLevel))
            {
                return;
            }

            try
            {
                output.WriteLine($"{DateTime.UtcNow:HH:mm:ss.fff} [{silo}] {logLevel} {category}: {formatter(state, exception)}{(exception is null ? "" : " " + exception.GetType().Name + ": " + exception.Message)}");
            }
            catch (InvalidOperationException)
            {
                // The test has finished; its output is closed.
            }
        }
    }
}

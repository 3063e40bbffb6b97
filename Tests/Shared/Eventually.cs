using System.Diagnostics;

namespace OrleansMeta.Tests.Shared;

/// <summary>
/// Waits for a condition to hold by polling it, failing after a bound with a message that names what was awaited and
/// the condition's last error. Tests wait on conditions like this, never on fixed sleeps.
/// </summary>
/// <remarks>
/// A condition that throws counts as "not yet" (a silo that is starting refuses connections), except for an
/// <see cref="InvalidOperationException"/>, which says the condition can never hold (the process being awaited
/// exited) and ends the wait at once.
/// </remarks>
public static class Eventually
{
    /// <summary>The bound when a caller gives none.</summary>
    public static readonly TimeSpan DefaultWithin = TimeSpan.FromSeconds(30);

    // In-memory state is cheap to read, so poll it often (some tests count events that follow each other quickly);
    // an asynchronous condition usually calls a silo, so poll it less often on the shared, small test machines.
    private static readonly TimeSpan SyncPollInterval = TimeSpan.FromMilliseconds(5);
    private static readonly TimeSpan AsyncPollInterval = TimeSpan.FromMilliseconds(50);

    /// <summary>Waits until <paramref name="condition"/> (which reads in-memory state) returns true.</summary>
    public static Task Until(Func<bool> condition, string what, TimeSpan? within = null) =>
        UntilCore(() => ValueTask.FromResult(condition()), what, within ?? DefaultWithin, SyncPollInterval);

    /// <summary>Waits until <paramref name="condition"/> (which may call a silo or the database) returns true.</summary>
    public static Task Until(Func<Task<bool>> condition, string what, TimeSpan? within = null) =>
        UntilCore(async () => await condition(), what, within ?? DefaultWithin, AsyncPollInterval);

    private static async Task UntilCore(Func<ValueTask<bool>> condition, string what, TimeSpan within, TimeSpan pollInterval)
    {
        var watch = Stopwatch.StartNew();
        Exception? last = null;
        while (true)
        {
            try
            {
                if (await condition())
                {
                    return;
                }
            }
            catch (InvalidOperationException)
            {
                throw;
            }
            catch (Exception exception)
            {
                last = exception;
            }

            if (watch.Elapsed > within)
            {
                var lastError = last is null ? "" : $" Last error: {last.GetType().Name}: {last.Message}";
                Assert.Fail($"Timed out after {within.TotalSeconds:0.#} s waiting until {what}.{lastError}");
            }

            await Task.Delay(pollInterval);
        }
    }
}

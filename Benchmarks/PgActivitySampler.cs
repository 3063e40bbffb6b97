using Npgsql;

namespace OrleansMeta.Benchmarks;

/// <summary>
/// Samples pg_stat_activity every 20 ms while a run goes on and tells, on average, how many of the database's client
/// backends were busy and on what (waiting for a lock, flushing the WAL, on CPU) or held a transaction open while
/// waiting for the client, and in which statement: a cheap look at where a durable write's time goes on the database side.
/// </summary>
public sealed class PgActivitySampler : IAsyncDisposable
{
    private readonly NpgsqlDataSource _dataSource;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;
    private readonly Dictionary<string, long> _counts = [];
    private int _samples;

    private PgActivitySampler(string connectionString)
    {
        _dataSource = NpgsqlDataSource.Create(connectionString);
        _loop = Task.Run(SampleAsync);
    }

    public static PgActivitySampler Start(string connectionString) => new(connectionString);

    /// <summary>Stops sampling; answers e.g. "4.1 active Lock:transactionid (WITH input AS ( SELECT t.ord), ..." (average
    /// backends per sample, with the start of the statement they ran).</summary>
    public async Task<string> StopAsync()
    {
        await _stop.CancelAsync();
        await _loop;
        return _samples == 0
            ? "no samples"
            : string.Join(", ", _counts.Where(c => c.Value * 20 >= _samples).OrderByDescending(c => c.Value)
                .Select(c => $"{(double)c.Value / _samples:0.0} {c.Key}"));
    }

    private async Task SampleAsync()
    {
        try
        {
            await using var connection = await _dataSource.OpenConnectionAsync(_stop.Token);
            while (!_stop.IsCancellationRequested)
            {
                await using (var command = new NpgsqlCommand(
                    "SELECT state || ' ' || coalesce(wait_event_type || ':' || wait_event, 'on CPU') || ' (' || left(regexp_replace(query, '\\s+', ' ', 'g'), 28) || ')', count(*) FROM pg_stat_activity " +
                    "WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend' AND state <> 'idle' GROUP BY 1",
                    connection))
                await using (var reader = await command.ExecuteReaderAsync(_stop.Token))
                {
                    while (await reader.ReadAsync(_stop.Token))
                    {
                        var key = reader.GetString(0);
                        _counts[key] = _counts.GetValueOrDefault(key) + reader.GetInt64(1);
                    }
                }

                _samples++;
                await Task.Delay(20, _stop.Token);
            }
        }
        catch (OperationCanceledException)
        {
            // Stopped.
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (!_stop.IsCancellationRequested)
        {
            await StopAsync();
        }

        _stop.Dispose();
        await _dataSource.DisposeAsync();
    }
}

using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Npgsql;
using OrleansMeta.Runtime;
using OrleansMeta.Runtime.Hosting;
using OrleansMeta.Runtime.Persistence.PostgreSql;

namespace OrleansMeta.Benchmarks;

/// <summary>
/// Durable grain state writes through the batching PostgreSQL provider, next to PostgreSQL's own single-row update
/// rate (one autocommit UPDATE per operation) on the same server in the same run.
/// </summary>
public static class StateWriteScenario
{
    private const int Grains = 256;

    public static async Task<IReadOnlyList<Measurement>> RunAsync(string connectionString, TimeSpan warmup, TimeSpan duration)
    {
        var results = new List<Measurement>();
        await using (var dataSource = NpgsqlDataSource.Create(connectionString))
        {
            await PrepareBaselineTableAsync(dataSource);
            foreach (var connections in new[] { 1, 16 })
            {
                results.Add(await LoadRunner.RunAsync($"postgres: single-row UPDATE, autocommit", connections, warmup, duration, async (worker, n) =>
                {
                    await using var command = dataSource.CreateCommand("UPDATE bench_counter SET value = value + 1 WHERE id = $1");
                    command.Parameters.AddWithValue((int)((worker * 31 + n) % Grains));
                    await command.ExecuteNonQueryAsync();
                }));
            }
        }

        var services = new ServiceCollection();
        services.AddLogging();
        services.AddPostgresGrainStorage(connectionString, $"bench-{Guid.NewGuid():N}");
        services.AddGrainRuntime().AddGrain<IWriterGrain, WriterGrain>();
        await using var provider = services.BuildServiceProvider();
        var hosted = provider.GetServices<IHostedService>().ToList();
        foreach (var service in hosted)
        {
            await service.StartAsync(CancellationToken.None);
        }

        var factory = provider.GetRequiredService<IGrainFactory>();
        var storage = provider.GetRequiredService<PostgresGrainStorage>();
        var grains = Enumerable.Range(0, Grains).Select(i => factory.GetGrain<IWriterGrain>($"w{i}")).ToArray();
        foreach (var callers in new[] { 16, Grains })
        {
            var transactionsBefore = storage.Statistics.Transactions;
            var writesBefore = storage.Statistics.Writes;
            var measurement = await LoadRunner.RunAsync($"grain state write, batched", callers, warmup, duration,
                (worker, _) => grains[worker].IncrementAsync());
            var writes = storage.Statistics.Writes - writesBefore;
            var transactions = storage.Statistics.Transactions - transactionsBefore;
            results.Add(measurement with { Scenario = $"grain state write, batched ({writes / Math.Max(1.0, transactions):0.0} rows/txn)" });
        }

        foreach (var service in hosted)
        {
            await service.StopAsync(CancellationToken.None);
        }

        return results;
    }

    private static async Task PrepareBaselineTableAsync(NpgsqlDataSource dataSource)
    {
        await using var command = dataSource.CreateCommand(
            "CREATE TABLE IF NOT EXISTS bench_counter (id int PRIMARY KEY, value bigint NOT NULL); " +
            $"INSERT INTO bench_counter SELECT g, 0 FROM generate_series(0, {Grains - 1}) g ON CONFLICT DO NOTHING;");
        await command.ExecuteNonQueryAsync();
    }
}

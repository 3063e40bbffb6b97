using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Npgsql;
using OrleansMeta.Runtime;
using OrleansMeta.Runtime.Cluster;
using OrleansMeta.Runtime.Hosting;
using OrleansMeta.Runtime.Persistence;
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

        // Without and with the fence every silo's writes carry (its membership row, locked FOR KEY SHARE per batch),
        // so that the fence's cost is measured in the same run.
        results.AddRange(await RunGrainWritesAsync(connectionString, warmup, duration, fenced: false));
        results.AddRange(await RunGrainWritesAsync(connectionString, warmup, duration, fenced: true));
        results.AddRange(await RunGrainWritesAsync(connectionString, warmup, duration, fenced: true, logged: true));
        results.Add(await RunAppendersAsync(connectionString, warmup, duration, storages: 1));
        results.Add(await RunAppendersAsync(connectionString, warmup, duration, storages: 3));
        return results;
    }

    /// <summary>
    /// The same load of logged writes (192 writers, one record each) through one storage or spread over three storages
    /// of one cluster, as three silos would append: what the log's append path lets several writers do at once.
    /// </summary>
    private static async Task<Measurement> RunAppendersAsync(string connectionString, TimeSpan warmup, TimeSpan duration, int storages)
    {
        const int Callers = 192;
        var clusterId = $"bench-{Guid.NewGuid():N}";
        var providers = new List<ServiceProvider>();
        var hosted = new List<IHostedService>();
        try
        {
            for (var i = 0; i < storages; i++)
            {
                var services = new ServiceCollection();
                services.AddLogging();
                services.AddPostgresGrainStorage(connectionString, clusterId);
                services.AddGrainRuntime().AddGrain<IWriterGrain, WriterGrain>();
                var provider = services.BuildServiceProvider();
                providers.Add(provider);
                foreach (var service in provider.GetServices<IHostedService>())
                {
                    await service.StartAsync(CancellationToken.None);
                    hosted.Add(service);
                }
            }

            var grains = Enumerable.Range(0, Callers)
                .Select(i => providers[i % storages].GetRequiredService<IGrainFactory>().GetGrain<IWriterGrain>($"a{i}"))
                .ToArray();
            var stats = providers.Select(p => p.GetRequiredService<PostgresGrainStorage>().Statistics).ToList();
            var writesBefore = stats.Sum(x => x.Writes);
            var transactionsBefore = stats.Sum(x => x.Transactions);
            var measurement = await LoadRunner.RunAsync("logged", Callers, warmup, duration, (worker, _) => grains[worker].IncrementLoggedAsync());
            var rows = (stats.Sum(x => x.Writes) - writesBefore) / Math.Max(1.0, stats.Sum(x => x.Transactions) - transactionsBefore);
            return measurement with
            {
                Scenario = $"grain state write, one log record each, {storages} storage{(storages == 1 ? "" : "s")} of one cluster ({rows:0.0} rows/txn)",
            };
        }
        finally
        {
            foreach (var service in hosted)
            {
                await service.StopAsync(CancellationToken.None);
            }

            foreach (var provider in providers)
            {
                await provider.DisposeAsync();
            }
        }
    }

    private static async Task<List<Measurement>> RunGrainWritesAsync(string connectionString, TimeSpan warmup, TimeSpan duration, bool fenced, bool logged = false)
    {
        var clusterId = $"bench-{Guid.NewGuid():N}";
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddPostgresGrainStorage(connectionString, clusterId);
        var silo = new SiloAddress("http://127.0.0.1:1", 1);
        if (fenced)
        {
            services.AddSingleton<IWriterFence>(new FixedWriter(silo));
        }

        services.AddGrainRuntime().AddGrain<IWriterGrain, WriterGrain>();
        await using var provider = services.BuildServiceProvider();
        var hosted = provider.GetServices<IHostedService>().ToList();
        foreach (var service in hosted)
        {
            await service.StartAsync(CancellationToken.None);
        }

        if (fenced)
        {
            await using var insert = provider.GetRequiredService<NpgsqlDataSource>().CreateCommand(
                "INSERT INTO membership (cluster_id, endpoint, generation, name, status, started_at, heartbeat_at, status_changed_at) " +
                "VALUES ($1, $2, $3, 'bench', 'Active', now(), now(), now())");
            insert.Parameters.AddWithValue(clusterId);
            insert.Parameters.AddWithValue(silo.Endpoint);
            insert.Parameters.AddWithValue(silo.Generation);
            await insert.ExecuteNonQueryAsync();
        }

        var results = new List<Measurement>();
        var factory = provider.GetRequiredService<IGrainFactory>();
        var storage = provider.GetRequiredService<PostgresGrainStorage>();
        var grains = Enumerable.Range(0, Grains).Select(i => factory.GetGrain<IWriterGrain>($"w{i}")).ToArray();
        foreach (var callers in new[] { 16, 64, Grains })
        {
            var transactionsBefore = storage.Statistics.Transactions;
            var recordsBefore = storage.Statistics.RecordsAppended;
            var writesBefore = storage.Statistics.Writes;
            var measurement = await LoadRunner.RunAsync($"grain state write, batched", callers, warmup, duration,
                (worker, _) => logged ? grains[worker].IncrementLoggedAsync() : grains[worker].IncrementAsync());
            var writes = storage.Statistics.Writes - writesBefore;
            var transactions = storage.Statistics.Transactions - transactionsBefore;
            if (logged && storage.Statistics.RecordsAppended - recordsBefore < writes)
            {
                throw new InvalidOperationException("A logged write committed without its record.");
            }

            results.Add(measurement with
            {
                Scenario = $"grain state write, batched{(fenced ? ", silo-fenced" : "")}{(logged ? ", one log record each" : "")} ({writes / Math.Max(1.0, transactions):0.0} rows/txn)",
            });
        }

        foreach (var service in hosted)
        {
            await service.StopAsync(CancellationToken.None);
        }

        return results;
    }

    private sealed class FixedWriter(SiloAddress silo) : IWriterFence
    {
        public SiloAddress? Writer => silo;
    }

    private static async Task PrepareBaselineTableAsync(NpgsqlDataSource dataSource)
    {
        await using var command = dataSource.CreateCommand(
            "CREATE TABLE IF NOT EXISTS bench_counter (id int PRIMARY KEY, value bigint NOT NULL); " +
            $"INSERT INTO bench_counter SELECT g, 0 FROM generate_series(0, {Grains - 1}) g ON CONFLICT DO NOTHING;");
        await command.ExecuteNonQueryAsync();
    }
}

using OrleansMeta.Cluster.Tests.Infrastructure;
using OrleansMeta.TestGrains;

namespace OrleansMeta.Cluster.Tests;

/// <summary>
/// Two activations of one grain can exist for a moment during a membership change. These tests make the old one as
/// dangerous as it gets (a paused process that resumes after its grains moved; a silo whose database connection hangs)
/// and check that it can neither commit nor keep acting as the owner.
/// </summary>
public sealed class OverlapTests
{
    [Fact]
    public async Task A_silo_paused_past_its_lease_cannot_fence_brokers_whose_sessions_moved_on()
    {
        await using var cluster = new TestCluster("paused", new Dictionary<string, string>
        {
            ["Meta:Membership:HeartbeatStaleAfter"] = "00:00:03",
            ["Meta:Brokers:SessionTimeout"] = "00:00:05",
        });
        var silos = new[] { await cluster.StartInProcessSiloAsync(), await cluster.StartInProcessSiloAsync() };
        var paused = await cluster.StartProcessSiloAsync();
        await cluster.WaitForAgreementAsync();

        // Brokers heartbeat through the two silos that keep running; about a third of their grains live on the other.
        var client = new OrleansMeta.Client.MetaClient(new OrleansMeta.Client.MetaClientOptions
        {
            BootstrapUrls = [.. silos.Select(s => s.Http.BaseAddress!)],
            RequestTimeout = TimeSpan.FromSeconds(20),
            MaxAttempts = 10,
        });
        var brokers = Enumerable.Range(0, 12).Select(id => new TestBroker(client, id)).ToList();
        foreach (var broker in brokers)
        {
            await broker.StartAsync();
        }

        await Eventually.Until(async () => (await client.ListBrokersAsync()).Brokers.All(b => b.State == "unfenced"),
            "every broker is unfenced", TimeSpan.FromSeconds(30));
        var before = (await client.ListBrokersAsync()).MetadataOffset;

        // Paused for longer than the broker session (5 s) and the silo's lease (3 s): peers declare it dead meanwhile,
        // and its broker grains come back on the other silos while the brokers keep heartbeating. (The session is long
        // enough that a broker whose grain moved always heartbeats its new activation in time, even on a busy machine.)
        var pausedAt = System.Diagnostics.Stopwatch.StartNew();
        paused.Pause();
        await Eventually.Until(async () => (await silos[0].GetClusterAsync()).Silos.Single(s => s.Name == paused.Name).Status == "dead",
            "the paused silo is declared dead", TimeSpan.FromSeconds(30));
        await Eventually.Until(async () => (await client.ListBrokersAsync()).Brokers.All(b => b.State == "unfenced"),
            "the brokers' sessions carry on elsewhere", TimeSpan.FromSeconds(30));
        // Let the paused process's session timers come due: the hazard under test.
        await Task.Delay(TimeSpan.FromSeconds(6.5) - pausedAt.Elapsed is { Ticks: > 0 } rest ? rest : TimeSpan.Zero);

        // On resuming, its old broker activations find sessions silent for seconds. They must not act on them.
        paused.Resume();
        await paused.WaitForExitAsync(TimeSpan.FromSeconds(30));

        // What the image says is what the live activations tell the brokers: unfenced.
        var after = await client.ListBrokersAsync(minOffset: (await client.ListBrokersAsync()).MetadataOffset);
        Assert.All(after.Brokers, b => Assert.Equal("unfenced", b.State));
        Assert.All(brokers, b => Assert.False(b.IsFenced));
        Assert.Equal(0L, await SessionExpiriesAfterAsync(cluster.ClusterId, before));
        foreach (var broker in brokers)
        {
            await broker.DisposeAsync();
        }
    }

    [Fact]
    public async Task A_silo_whose_database_connection_hangs_stops_serving_within_its_lease_not_the_drivers_timeout()
    {
        await using var cluster = new TestCluster("stalled", new Dictionary<string, string>
        {
            ["Meta:Membership:HeartbeatStaleAfter"] = "00:00:02",
        });
        var healthy = await cluster.StartInProcessSiloAsync();
        var builder = new Npgsql.NpgsqlConnectionStringBuilder(TestPostgres.ConnectionString);
        await using var proxy = new TcpProxy(builder.Host!, builder.Port);
        builder.Port = proxy.Port;
        var stalled = await cluster.StartInProcessSiloAsync(new Dictionary<string, string> { ["ConnectionStrings:Postgres"] = builder.ConnectionString });
        await cluster.WaitForAgreementAsync();
        var keys = Enumerable.Range(0, 20).Select(i => $"acct-{i}").ToList();
        foreach (var key in keys)
        {
            await healthy.Grains.GetGrain<IAccountGrain>(key).DepositAsync(1, $"before-{key}");
        }

        // Packets stop flowing but nothing is closed: every database call of that silo just hangs (Npgsql's own
        // command timeout is 30 s). Its lease must end it well before that.
        proxy.Stall();
        await Eventually.Until(async () => (await stalled.Http.GetAsync("/health/ready")).StatusCode == System.Net.HttpStatusCode.ServiceUnavailable,
            "the silo cut off by a hanging connection reports not ready", TimeSpan.FromSeconds(12));
        await Eventually.Until(async () => (await healthy.GetClusterAsync()).Silos.Single(s => s.Endpoint == stalled.SiloEndpoint).Status == "dead",
            "its peer declares it dead", TimeSpan.FromSeconds(20));

        foreach (var key in keys)
        {
            var state = await healthy.Grains.GetGrain<IAccountGrain>(key).GetAsync();
            Assert.Equal([$"before-{key}"], state.Operations);
        }

        proxy.Heal();
    }

    /// <summary>How many broker records after <paramref name="offset"/> fenced a broker because its session expired.</summary>
    internal static async Task<long> SessionExpiriesAfterAsync(string clusterId, long offset)
    {
        await using var connection = new Npgsql.NpgsqlConnection(TestPostgres.ConnectionString);
        await connection.OpenAsync();
        await using var command = new Npgsql.NpgsqlCommand(
            "SELECT count(*) FROM metadata_log WHERE cluster_id = $1 AND log_offset > $2 AND type = 'broker' AND convert_from(payload, 'UTF8') LIKE '%session-expired%'",
            connection);
        command.Parameters.Add(new Npgsql.NpgsqlParameter<string> { TypedValue = clusterId });
        command.Parameters.Add(new Npgsql.NpgsqlParameter<long> { TypedValue = offset });
        return (long)(await command.ExecuteScalarAsync())!;
    }
}

using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net.Http.Json;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using OrleansMeta.Cluster.Tests.Infrastructure;
using OrleansMeta.Runtime;
using OrleansMeta.Runtime.Calls;
using OrleansMeta.Runtime.Cluster;
using OrleansMeta.Runtime.Messaging;
using OrleansMeta.Runtime.Placement;
using OrleansMeta.TestGrains;
using Xunit.Abstractions;

namespace OrleansMeta.Cluster.Tests;

public sealed class FailoverTests(ITestOutputHelper output)
{
    [Fact]
    public async Task A_gracefully_stopped_silo_hands_over_its_grains_with_no_failed_calls()
    {
        await using var cluster = new TestCluster("graceful");
        var silos = await StartThreeAsync(cluster);
        var depositors = new Depositors([silos[0], silos[1]], workers: 8, accounts: 24);
        await depositors.WaitForMoreAsync(200, "calls are flowing");
        await silos[2].StopAsync();
        await depositors.WaitForMoreAsync(200, "calls keep flowing after the stop");
        await cluster.WaitForAgreementAsync();
        await depositors.StopAndCheckAsync(silos[0].Grains);
    }

    [Fact]
    public async Task A_turn_still_running_on_a_leaving_silo_commits_before_the_new_owner_loads_the_grain()
    {
        await using var cluster = new TestCluster("leaving-turn");
        var silos = await StartThreeAsync(cluster);
        var leaving = SelfOf(silos[2]);
        var key = await AccountOwnedByAsync(silos[0], leaving, "leave");

        // A turn runs on the owner that is about to leave; peers stop routing to it as soon as it starts leaving.
        var slow = await StartSlowDepositAsync(silos[0], key);
        var stopping = silos[2].StopAsync();
        await Eventually.Until(
            () => Task.FromResult(!silos[0].Services.GetRequiredService<IClusterMembership>().CurrentView.ActiveSilos.Any(s => s.ToString() == leaving)),
            "the survivors see the third silo leave",
            TimeSpan.FromSeconds(10));

        // The next call goes to the new owner, which must not load the grain before the old turn's write commits:
        // otherwise one of the two writes loses the compare-and-set and its caller sees a conflict.
        var quick = await silos[0].Grains.GetGrain<IAccountGrain>(key).DepositAsync(1, $"{key}-quick");
        Assert.Equal(1, await slow);
        Assert.Equal(2, quick);
        await stopping;
        var state = await silos[1].Grains.GetGrain<IAccountGrain>(key).GetAsync();
        Assert.Equal([$"{key}-slow", $"{key}-quick"], state.Operations);
    }

    [Fact]
    public async Task Silos_settle_the_join_hand_over_with_each_peer_before_any_grain_needs_it()
    {
        // Asked only by the first activation that needs it, the question "do you hold any of my grains?" made a
        // failover's activations wait behind the failover's own work; it is asked as soon as a view has the peer.
        await using var cluster = new TestCluster("eager-hand-over");
        var silos = new List<InProcessSilo>();
        for (var i = 0; i < 3; i++)
        {
            silos.Add(await cluster.StartInProcessSiloAsync());
        }

        await cluster.WaitForAgreementAsync();
        HandOverStatistics Statistics(InProcessSilo silo) => silo.Services.GetRequiredService<Runtime.Cluster.PostgreSql.PostgresClusterMembership>().HandOver;
        await Eventually.Until(() => Task.FromResult(silos.All(s => Statistics(s).PeerQuestions >= 2)),
            "every silo has asked both peers, with no grain called yet", TimeSpan.FromSeconds(30));
        await Task.Delay(TimeSpan.FromMilliseconds(500));

        await Task.WhenAll(Enumerable.Range(0, 30).Select(i => silos[0].Grains.GetGrain<IAccountGrain>($"eager-{i}").DepositAsync(1, $"op-{i}")));
        foreach (var silo in silos)
        {
            output.WriteLine($"{silo.Name}: {Statistics(silo)}");
        }

        Assert.All(silos, silo => Assert.Equal(0, Statistics(silo).Waits));
    }

    [Fact]
    public async Task A_turn_still_running_on_the_previous_owner_commits_before_a_silo_that_joined_loads_the_grain()
    {
        await using var cluster = new TestCluster("joining-turn");
        var first = await cluster.StartInProcessSiloAsync();
        await cluster.StartInProcessSiloAsync();
        await cluster.WaitForAgreementAsync();

        // Turns run on the owners of two dozen accounts, all among the first two silos.
        var keys = Enumerable.Range(0, 24).Select(i => $"join-{i}").ToList();
        var slow = keys.ToDictionary(key => key, key => first.Grains.GetGrain<IAccountGrain>(key).DepositSlowlyAsync(1, $"{key}-slow", delayMs: 8000));
        await Task.WhenAll(keys.Select(key => SlowTurns.Started($"{key}-slow").WaitAsync(TimeSpan.FromSeconds(10))));

        // A third silo joins and takes about a third of those accounts while their turns still run.
        var third = await cluster.StartInProcessSiloAsync();
        var membership = third.Services.GetRequiredService<IClusterMembership>();
        await Eventually.Until(() => Task.FromResult(membership.IsActive), "the third silo is active", TimeSpan.FromSeconds(10));
        var moved = keys.Where(key => RendezvousPlacement.Owner(
            third.Grains.GetGrain<IAccountGrain>(key).GetGrainId(), membership.CurrentView.ActiveSilos) == membership.Self).ToList();
        Assert.NotEmpty(moved);
        Assert.All(moved, key => Assert.False(slow[key].IsCompleted, $"the turn on {key}'s previous owner still runs when the test goes on"));

        // The newcomer owns these now and must not load one before its previous owner's turn has committed: otherwise
        // one of the two writes loses the compare-and-set and its caller sees a conflict.
        var quick = await Task.WhenAll(moved.Select(key => third.Grains.GetGrain<IAccountGrain>(key).DepositAsync(1, $"{key}-quick")));
        Assert.All(quick, balance => Assert.Equal(2, balance));
        foreach (var key in keys)
        {
            Assert.Equal(1, await slow[key]);
        }

        foreach (var key in moved)
        {
            var state = await third.Grains.GetGrain<IAccountGrain>(key).GetAsync();
            Assert.Equal([$"{key}-slow", $"{key}-quick"], state.Operations);
            Assert.Equal(membership.Self!.ToString(), (await third.Grains.GetGrain<IAccountGrain>(key).WhereAsync()).Silo);
        }
    }

    [Fact]
    public async Task A_turn_still_running_on_a_leaving_silo_can_call_a_grain_that_silo_owned_a_moment_ago()
    {
        await using var cluster = new TestCluster("leaving-calls-home");
        var silos = await StartThreeAsync(cluster);
        var leaving = SelfOf(silos[2]);
        var relay = await KeyOwnedByAsync("relay", async key =>
            (await silos[0].Grains.GetGrain<IRelayGrain>(key).RelayAsync([])).Single().EndsWith($"@{leaving}", StringComparison.Ordinal));
        var account = await AccountOwnedByAsync(silos[0], leaving, "home");

        await silos[0].Grains.GetGrain<IAccountGrain>(account).DepositAsync(1, $"{account}-first");

        // The relay's turn runs on the leaving silo and, once that silo has begun to leave, calls the account, which
        // that silo owned until then. The account's new owner must not wait for the whole leaving silo (which waits for
        // this very turn), only for the account's own activation there to be gone.
        var later = silos[0].Grains.GetGrain<IRelayGrain>(relay).DepositLaterAsync(account, $"{account}-later", delayMs: 1500);
        await SlowTurns.Started($"{account}-later").WaitAsync(TimeSpan.FromSeconds(10));
        var stopping = silos[2].StopAsync();
        Assert.Equal(2, await later);
        await stopping;

        var state = await silos[1].Grains.GetGrain<IAccountGrain>(account).GetAsync();
        Assert.Equal([$"{account}-first", $"{account}-later"], state.Operations);
    }

    [Fact]
    public async Task A_leaving_silo_keeps_its_endpoint_open_until_no_peer_call_is_in_flight_or_arriving()
    {
        await using var cluster = new TestCluster("leave-drain");
        var silos = await StartThreeAsync(cluster);
        var key = await AccountOwnedByAsync(silos[0], SelfOf(silos[2]), "drain");

        // The host stops its web server right after ApplicationStopping: record what the leaving silo's endpoint still
        // had in flight at that moment.
        var inbound = silos[2].Services.GetRequiredService<InboundGrainCalls>();
        var inFlightAtServerStop = -1;
        var slowDoneAtServerStop = false;
        Task<long>? slow = null;
        silos[2].Services.GetRequiredService<IHostApplicationLifetime>().ApplicationStopping.Register(() =>
        {
            inFlightAtServerStop = inbound.InFlight;
            slowDoneAtServerStop = slow!.IsCompletedSuccessfully;
        });

        // Peers keep calling grains, a third of them the leaving silo's, while a forwarded call is held open on it.
        var depositors = new Depositors([silos[0], silos[1]], workers: 6, accounts: 30);
        await depositors.WaitForMoreAsync(100, "calls are flowing");

        slow = await StartSlowDepositAsync(silos[0], key);
        await silos[2].StopAsync();

        Assert.Equal(1, await slow);
        Assert.True(slowDoneAtServerStop, "the call held open on the leaving silo was answered before its server stopped");
        Assert.Equal(0, inFlightAtServerStop);

        await depositors.WaitForMoreAsync(100, "calls keep flowing after the stop");
        await depositors.StopAndCheckAsync(silos[1].Grains);
    }

    [Fact]
    public async Task A_killed_silo_is_declared_dead_and_its_grains_answer_from_others_with_no_acknowledged_write_lost()
    {
        await using var cluster = new TestCluster("kill9");
        var silos = new List<ProcessSilo>();
        for (var i = 0; i < 3; i++)
        {
            silos.Add(await cluster.StartProcessSiloAsync());
        }

        await cluster.WaitForAgreementAsync();
        var acknowledged = await DepositAsync(silos[0], keys: 30, rounds: 3);
        var victim = silos[2];
        var victimWhere = await Task.WhenAll(Enumerable.Range(0, 30).Select(i => silos[0].Http.GetFromJsonAsync<Placement>($"/test/accounts/acct-{i}/where")));
        var victimOwned = victimWhere.Count(p => p!.Silo.StartsWith(victim.SiloEndpoint, StringComparison.Ordinal));
        Assert.True(victimOwned > 0, "the victim should own some grains");

        var watch = Stopwatch.StartNew();
        victim.Kill();
        await Eventually.Until(async () =>
        {
            var views = await Task.WhenAll(silos.Take(2).Select(s => s.GetClusterAsync()));
            return views.All(v => v.Silos.Single(s => s.Endpoint == victim.SiloEndpoint).Status == "dead");
        }, "every survivor sees the killed silo dead", TimeSpan.FromSeconds(30));
        output.WriteLine($"kill -9 to dead in every view (fast test settings): {watch.Elapsed.TotalSeconds:0.00} s");

        // Every grain answers from a survivor, and every acknowledged deposit is there exactly once.
        for (var i = 0; i < 30; i++)
        {
            var state = await silos[1].Http.GetFromJsonAsync<AccountState>($"/test/accounts/acct-{i}");
            Assert.Equal(acknowledged[$"acct-{i}"].Order(), state!.Operations.Order());
        }

        var more = await DepositAsync(silos[1], keys: 30, rounds: 1);
        Assert.Equal(30, more.Count);
    }

    [Fact]
    public async Task An_in_process_silo_that_crashes_and_restarts_comes_back_as_a_new_generation_and_serves_again()
    {
        await using var cluster = new TestCluster("crash-restart");
        var silos = await StartThreeAsync(cluster);
        var before = await Task.WhenAll(Enumerable.Range(0, 30).Select(i => silos[0].Grains.GetGrain<IAccountGrain>($"acct-{i}").DepositAsync(1, $"before-{i}")));
        var generation = (await silos[0].GetClusterAsync()).Silos.Single(s => s.Endpoint == silos[1].SiloEndpoint).Generation;

        await silos[1].KillAsync();
        await Eventually.Until(async () => (await silos[0].GetClusterAsync()).Silos.Single(s => s.Endpoint == silos[1].SiloEndpoint && s.Generation == generation).Status == "dead",
            "the crashed silo is declared dead", TimeSpan.FromSeconds(30));
        var restarted = await cluster.RestartInProcessSiloAsync(silos[1]);
        await cluster.WaitForAgreementAsync();

        var view = await silos[0].GetClusterAsync();
        Assert.Equal("active", view.Silos.Single(s => s.Endpoint == restarted.SiloEndpoint && s.Generation > generation).Status);
        var placements = await Task.WhenAll(Enumerable.Range(0, 30).Select(i => restarted.Grains.GetGrain<IAccountGrain>($"acct-{i}").WhereAsync()));
        Assert.Contains(placements, p => p.Silo.StartsWith(restarted.SiloEndpoint, StringComparison.Ordinal));
        for (var i = 0; i < 30; i++)
        {
            var state = await silos[2].Grains.GetGrain<IAccountGrain>($"acct-{i}").GetAsync();
            Assert.Equal([$"before-{i}"], state.Operations);
        }
    }

    [Fact]
    public async Task A_silo_cut_off_from_PostgreSQL_stops_serving_is_declared_dead_and_its_grains_move()
    {
        await using var cluster = new TestCluster("cut-off", new Dictionary<string, string>
        {
            ["Meta:Membership:HeartbeatStaleAfter"] = "00:00:02",
        });
        var silos = new List<InProcessSilo> { await cluster.StartInProcessSiloAsync(), await cluster.StartInProcessSiloAsync() };
        var builder = new Npgsql.NpgsqlConnectionStringBuilder(TestPostgres.ConnectionString);
        await using var proxy = new TcpProxy(builder.Host!, builder.Port);
        builder.Port = proxy.Port;
        builder.Pooling = true;
        var isolated = await cluster.StartInProcessSiloAsync(new Dictionary<string, string> { ["ConnectionStrings:Postgres"] = builder.ConnectionString });
        await cluster.WaitForAgreementAsync();
        var keys = Enumerable.Range(0, 30).Select(i => $"acct-{i}").ToList();
        foreach (var key in keys)
        {
            await silos[0].Grains.GetGrain<IAccountGrain>(key).DepositAsync(1, $"before-{key}");
        }

        var owned = (await Task.WhenAll(keys.Select(k => silos[0].Grains.GetGrain<IAccountGrain>(k).WhereAsync())))
            .Count(p => p.Silo.StartsWith(isolated.SiloEndpoint, StringComparison.Ordinal));
        Assert.True(owned > 0, "the silo to cut off should own some grains");

        proxy.Cut();
        await Eventually.Until(async () => (await isolated.Http.GetAsync("/health/ready")).StatusCode == System.Net.HttpStatusCode.ServiceUnavailable,
            "the cut-off silo reports not ready", TimeSpan.FromSeconds(30));
        await Eventually.Until(async () => (await silos[0].GetClusterAsync()).Silos.Single(s => s.Endpoint == isolated.SiloEndpoint).Status == "dead",
            "its peers declare it dead", TimeSpan.FromSeconds(30));

        foreach (var key in keys)
        {
            var state = await silos[1].Grains.GetGrain<IAccountGrain>(key).GetAsync();
            Assert.Equal([$"before-{key}"], state.Operations);
            Assert.DoesNotContain(isolated.SiloEndpoint, (await silos[1].Grains.GetGrain<IAccountGrain>(key).WhereAsync()).Silo, StringComparison.Ordinal);
        }
    }

    private static async Task<List<InProcessSilo>> StartThreeAsync(TestCluster cluster)
    {
        var silos = new List<InProcessSilo>();
        for (var i = 0; i < 3; i++)
        {
            silos.Add(await cluster.StartInProcessSiloAsync());
        }

        await cluster.WaitForAgreementAsync();
        return silos;
    }

    private static string SelfOf(InProcessSilo silo) => silo.Services.GetRequiredService<IClusterMembership>().Self!.ToString();

    /// <summary>The first account named <c>{prefix}-{n}</c> that <paramref name="silo"/> owns.</summary>
    private static Task<string> AccountOwnedByAsync(InProcessSilo via, string silo, string prefix)
        => KeyOwnedByAsync(prefix, async key => (await via.Grains.GetGrain<IAccountGrain>(key).WhereAsync()).Silo == silo);

    /// <summary>The first of <paramref name="prefix"/>-0, -1, ... that <paramref name="owned"/> says yes to.</summary>
    private static async Task<string> KeyOwnedByAsync(string prefix, Func<string, Task<bool>> owned)
    {
        for (var i = 0; ; i++)
        {
            if (await owned($"{prefix}-{i}"))
            {
                return $"{prefix}-{i}";
            }
        }
    }

    /// <summary>Starts a deposit whose turn takes 1.5 s on the account's owner, and returns once that turn runs.</summary>
    private static async Task<Task<long>> StartSlowDepositAsync(InProcessSilo via, string key)
    {
        var slow = via.Grains.GetGrain<IAccountGrain>(key).DepositSlowlyAsync(1, $"{key}-slow", delayMs: 1500);
        await SlowTurns.Started($"{key}-slow").WaitAsync(TimeSpan.FromSeconds(10));
        return slow;
    }

    /// <summary>Workers that keep depositing into a few accounts through some silos, recording every acknowledged
    /// deposit; any failed call fails <see cref="StopAndCheckAsync"/>.</summary>
    private sealed class Depositors
    {
        private readonly ConcurrentDictionary<string, ConcurrentBag<string>> _acknowledged = new();
        private readonly CancellationTokenSource _stop = new();
        private readonly List<Task> _workers;

        public Depositors(IReadOnlyList<InProcessSilo> via, int workers, int accounts) =>
            _workers = [.. Enumerable.Range(0, workers).Select(worker => Task.Run(async () =>
            {
                var n = 0;
                while (!_stop.IsCancellationRequested)
                {
                    var account = $"acct-{(worker * 7 + n) % accounts}";
                    var op = $"w{worker}-{n++}";
                    await via[worker % via.Count].Grains.GetGrain<IAccountGrain>(account).DepositAsync(1, op);
                    _acknowledged.GetOrAdd(account, _ => []).Add(op);
                }
            }))];

        private int Count => _acknowledged.Values.Sum(b => b.Count);

        public Task WaitForMoreAsync(int more, string what)
        {
            var start = Count;
            return Eventually.Until(() => Count > start + more, what, TimeSpan.FromSeconds(30));
        }

        /// <summary>Stops the workers (rethrowing any failed call) and checks every acknowledged deposit was applied once.</summary>
        public async Task StopAndCheckAsync(IGrainFactory reader)
        {
            await _stop.CancelAsync();
            await Task.WhenAll(_workers);
            _stop.Dispose();
            foreach (var (account, ops) in _acknowledged)
            {
                var state = await reader.GetGrain<IAccountGrain>(account).GetAsync();
                Assert.Equal(ops.Order(), state.Operations.Order());
            }
        }
    }

    private static async Task<Dictionary<string, List<string>>> DepositAsync(SiloHandle via, int keys, int rounds)
    {
        var acknowledged = new Dictionary<string, List<string>>();
        for (var round = 0; round < rounds; round++)
        {
            await Task.WhenAll(Enumerable.Range(0, keys).Select(async i =>
            {
                var op = $"r{round}-{Guid.NewGuid():N}";
                var response = await via.Http.PostAsync($"/test/accounts/acct-{i}/deposits?amount=1&op={op}", null);
                response.EnsureSuccessStatusCode();
                lock (acknowledged)
                {
                    (acknowledged.TryGetValue($"acct-{i}", out var list) ? list : acknowledged[$"acct-{i}"] = []).Add(op);
                }
            }));
        }

        return acknowledged;
    }
}

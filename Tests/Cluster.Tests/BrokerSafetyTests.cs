using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using OrleansMeta.Client;
using OrleansMeta.Contracts;
using OrleansMeta.Cluster.Tests.Infrastructure;
using OrleansMeta.GrainInterfaces;
using OrleansMeta.Grains.Metadata;

namespace OrleansMeta.Cluster.Tests;

/// <summary>Broker registration, controlled shutdown and unregistration under failed writes and overlap (issue 7: 3, 4, 8, 9).</summary>
public sealed class BrokerSafetyTests
{
    private static readonly IReadOnlyList<ListenerRecord> Listeners = [new("PLAINTEXT", "broker.test", 9092, "PLAINTEXT")];

    [Fact]
    public async Task A_registration_whose_write_failed_hands_out_no_epoch_and_the_retry_registers_a_broker_that_can_be_unfenced()
    {
        await using var cluster = new TestCluster("failed-registration");
        await using var silo = await HookedSilo.StartAsync(cluster, "silo-0");
        await WaitReadyAsync(silo);
        var broker = silo.Grains.GetGrain<IBrokerGrain>("5");
        var registration = new RegisterBroker(Guid.NewGuid(), Listeners, null);

        silo.Storage.FailNextWrites((grain, _) => grain.Type == "broker");
        await Assert.ThrowsAnyAsync<Exception>(() => broker.RegisterAsync(registration));

        // The broker retries with the same incarnation, as it does after any failed registration.
        var registered = await broker.RegisterAsync(registration);
        var image = silo.Services.GetRequiredService<MetadataImageService>();
        var metadata = await image.WaitForAsync(registered.MetadataOffset, TimeSpan.FromSeconds(10));
        Assert.Equal(registered.BrokerEpoch, metadata.Brokers[5].Record.BrokerEpoch);

        var answer = await broker.HeartbeatAsync(new BrokerHeartbeat(registered.BrokerEpoch, registered.MetadataOffset, WantShutDown: false));
        Assert.False(answer.IsFenced);
    }

    [Fact]
    public async Task A_registration_that_committed_but_whose_answer_was_lost_is_answered_on_retry_with_the_committed_epoch()
    {
        await using var cluster = new TestCluster("lost-registration");
        await using var silo = await HookedSilo.StartAsync(cluster, "silo-0");
        await WaitReadyAsync(silo);
        var broker = silo.Grains.GetGrain<IBrokerGrain>("6");
        var registration = new RegisterBroker(Guid.NewGuid(), Listeners, null);

        silo.Storage.FailNextWrites((grain, _) => grain.Type == "broker", afterCommit: true);
        await Assert.ThrowsAnyAsync<Exception>(() => broker.RegisterAsync(registration));

        // The broker retries until it gets an answer (the activation may first have to reload what was committed).
        BrokerRegistration? registered = null;
        await Eventually.Until(async () =>
        {
            registered = await broker.RegisterAsync(registration);
            return true;
        }, "the retried registration is answered", TimeSpan.FromSeconds(30));

        var image = silo.Services.GetRequiredService<MetadataImageService>();
        var metadata = await image.WaitForAsync(registered!.MetadataOffset, TimeSpan.FromSeconds(10));
        var known = metadata.Brokers[6];
        Assert.Equal(registration.IncarnationId, known.Record.IncarnationId);
        Assert.Equal(known.RegistrationOffset, registered.BrokerEpoch);
        Assert.Equal(known.Record.BrokerEpoch, registered.BrokerEpoch);
        var answer = await broker.HeartbeatAsync(new BrokerHeartbeat(registered.BrokerEpoch, registered.MetadataOffset, WantShutDown: false));
        Assert.False(answer.IsFenced);
    }

    [Fact]
    public async Task Broker_epochs_are_the_offsets_of_their_registration_records_and_unique_across_brokers()
    {
        await using var setup = await MetaSetup.StartAsync("epoch-offsets", silos: 1);
        Assert.Equal(setup.Brokers.Count, setup.Brokers.Select(b => b.Epoch).Distinct().Count());

        var registration = await setup.Client.RegisterBrokerAsync(7, new BrokerRegistrationRequest(Guid.NewGuid(), [new BrokerListener("PLAINTEXT", "b7", 9092)]));
        Assert.Equal(registration.MetadataOffset, registration.BrokerEpoch);
        Assert.True(registration.BrokerEpoch > setup.Brokers.Max(b => b.Epoch));
        var listed = (await setup.Client.ListBrokersAsync(registration.MetadataOffset)).Brokers;
        Assert.Equal(registration.BrokerEpoch, listed.Single(b => b.BrokerId == 7).BrokerEpoch);
        Assert.Equal(listed.Count, listed.Select(b => b.BrokerEpoch).Distinct().Count());
    }

    [Fact]
    public async Task A_broker_told_it_may_shut_down_is_fenced_at_once_so_a_restart_registers_without_waiting_for_the_session()
    {
        // A session long enough that only fencing at shutdown (not expiry) lets the restart in during the test.
        await using var setup = await MetaSetup.StartAsync("shutdown-fences", settings: new Dictionary<string, string>
        {
            ["Meta:Brokers:SessionTimeout"] = "00:01:00",
        });
        await setup.Client.CreateTopicAsync(new CreateTopicRequest("parcels", 6, 3));
        var leaving = setup.Brokers[0];
        await leaving.StopHeartbeatsAsync();

        BrokerHeartbeatResponse answer = null!;
        await Eventually.Until(async () =>
        {
            answer = await setup.Client.SendBrokerHeartbeatAsync(leaving.Id, new BrokerHeartbeatRequest(leaving.Epoch, (await setup.Client.GetMetadataAsync()).MetadataOffset, WantShutDown: true));
            return answer.ShouldShutDown;
        }, "the broker is told it may shut down", TimeSpan.FromSeconds(30));
        Assert.True(answer.IsFenced);
        var metadata = await setup.Client.GetMetadataAsync(["parcels"], answer.MetadataOffset);
        Assert.All(metadata.Topics.Single().Partitions, p => Assert.NotEqual(leaving.Id, p.Leader));

        // The old process keeps heartbeating (without asking to stop): it cannot come back, nor hold the broker id.
        var again = await setup.Client.SendBrokerHeartbeatAsync(leaving.Id, new BrokerHeartbeatRequest(leaving.Epoch, (await setup.Client.GetMetadataAsync()).MetadataOffset));
        Assert.True(again.IsFenced);
        Assert.True(again.ShouldShutDown);

        var restarted = await setup.Client.RegisterBrokerAsync(leaving.Id, new BrokerRegistrationRequest(Guid.NewGuid(), [new BrokerListener("PLAINTEXT", "restarted", 9092)]));
        Assert.True(restarted.BrokerEpoch > leaving.Epoch);
        var stale = await Assert.ThrowsAsync<MetaApiException>(() => setup.Client.SendBrokerHeartbeatAsync(leaving.Id, new BrokerHeartbeatRequest(leaving.Epoch, 0)));
        Assert.Equal(ErrorCodes.StaleBrokerEpoch, stale.Code);
    }

    [Fact]
    public async Task A_process_that_asked_to_shut_down_and_then_heartbeats_without_asking_still_completes_the_shutdown()
    {
        await using var setup = await MetaSetup.StartAsync("shutdown-continues", settings: new Dictionary<string, string>
        {
            ["Meta:Brokers:SessionTimeout"] = "00:01:00",
        });
        await setup.Client.CreateTopicAsync(new CreateTopicRequest("letters", 3, 3));
        var leaving = setup.Brokers[0];
        await leaving.StopHeartbeatsAsync();
        await setup.Client.SendBrokerHeartbeatAsync(leaving.Id, new BrokerHeartbeatRequest(leaving.Epoch, (await setup.Client.GetMetadataAsync()).MetadataOffset, WantShutDown: true));

        // The process goes on heartbeating as if nothing happened: it is still told to stop, and the id is freed.
        await Eventually.Until(async () => (await setup.Client.SendBrokerHeartbeatAsync(leaving.Id, new BrokerHeartbeatRequest(leaving.Epoch, (await setup.Client.GetMetadataAsync()).MetadataOffset))).ShouldShutDown,
            "the broker is told it may stop", TimeSpan.FromSeconds(30));
        var restarted = await setup.Client.RegisterBrokerAsync(leaving.Id, new BrokerRegistrationRequest(Guid.NewGuid(), [new BrokerListener("PLAINTEXT", "again", 9092)]));
        Assert.True(restarted.BrokerEpoch > leaving.Epoch);
    }

    [Fact]
    public async Task A_broker_in_controlled_shutdown_is_not_told_to_stop_while_a_partition_whose_move_failed_still_has_it_as_leader()
    {
        await using var cluster = new TestCluster("failed-moves");
        await using var silo = await HookedSilo.StartAsync(cluster, "silo-0");
        await WaitReadyAsync(silo);
        using var client = new MetaClient(new MetaClientOptions { BootstrapUrls = [silo.Http.BaseAddress!], MaxAttempts = 10 });
        var brokers = await TestBroker.StartUnfencedAsync(client, 1, 2, 3);

        var created = await client.CreateTopicAsync(new CreateTopicRequest("moves", 1, 3));
        var leaving = brokers.Single(b => b.Id == created.Topic.Partitions[0].Leader);
        await leaving.StopHeartbeatsAsync();

        // The first two attempts to move the partition's leadership fail in storage.
        silo.Storage.FailNextWrites((grain, _) => grain.Type == "partition", count: 2);
        PartitionInfo? whenTold = null;
        await Eventually.Until(async () =>
        {
            var answer = await client.SendBrokerHeartbeatAsync(leaving.Id, new BrokerHeartbeatRequest(leaving.Epoch, (await client.GetMetadataAsync()).MetadataOffset, WantShutDown: true));
            if (answer.ShouldShutDown)
            {
                whenTold = (await client.DescribeTopicAsync("moves", answer.MetadataOffset)).Topic.Partitions[0];
            }

            return answer.ShouldShutDown;
        }, "the broker is told it may stop", TimeSpan.FromSeconds(30));
        Assert.NotEqual(leaving.Id, whenTold!.Leader);
        Assert.Equal(0, silo.Storage.PendingFailures);

        foreach (var started in brokers)
        {
            await started.DisposeAsync();
        }
    }

    [Fact]
    public async Task A_controlled_shutdown_heartbeat_that_takes_longer_than_the_session_does_not_get_the_broker_session_fenced()
    {
        await using var cluster = new TestCluster("long-shutdown-turn");
        await using var silo = await HookedSilo.StartAsync(cluster, "silo-0", new Dictionary<string, string>
        {
            ["Meta:Brokers:SessionTimeout"] = "00:00:01",
            ["Meta:Brokers:SessionCheckInterval"] = "00:00:00.100",
            ["Meta:Controller:ImageWaitTimeout"] = "00:00:03",
        });
        await WaitReadyAsync(silo);
        using var client = new MetaClient(new MetaClientOptions { BootstrapUrls = [silo.Http.BaseAddress!], MaxAttempts = 10 });
        var brokers = await TestBroker.StartUnfencedAsync(client, 1, 2, 3);

        await client.CreateTopicAsync(new CreateTopicRequest("slow", 3, 3));
        var leaving = brokers[0];
        await leaving.StopHeartbeatsAsync();
        var grain = silo.Grains.GetGrain<IBrokerGrain>(leaving.Id.ToString(System.Globalization.CultureInfo.InvariantCulture));

        // The image stands still, so the heartbeat that enters controlled shutdown waits 3 s for it: three sessions.
        var image = silo.Services.GetRequiredService<MetadataImageService>();
        silo.Log.HoldAt(image.Current.Offset);
        var slow = await grain.HeartbeatAsync(new BrokerHeartbeat(leaving.Epoch, long.MaxValue, WantShutDown: true));
        Assert.False(slow.ShouldShutDown);
        silo.Log.Release();

        var told = System.Diagnostics.Stopwatch.StartNew();
        while (!(await grain.HeartbeatAsync(new BrokerHeartbeat(leaving.Epoch, long.MaxValue, WantShutDown: true))).ShouldShutDown)
        {
            // On failure, say what the image shows: who leads what, and which brokers count as active.
            Assert.True(told.Elapsed < TimeSpan.FromSeconds(30), $"The broker was not told it may stop within 30 s. Image at {image.Current.Offset}: " +
                string.Join("; ", image.Current.Brokers.Values.Select(b => $"broker {b.Record.BrokerId} {b.Record.State}")) + "; " +
                string.Join("; ", image.Current.Topics.Values.SelectMany(t => t.Partitions.Select(p => $"{t.Topic.Name}-{p.Partition} leader {p.Leader} isr [{string.Join(",", p.Isr)}]"))));
            await Task.Delay(100);
        }

        var changes = (await silo.Services.GetRequiredService<OrleansMeta.Runtime.Persistence.IMetadataLog>().ReadAsync(0, 100_000, CancellationToken.None))
            .Where(r => r.Type == RecordTypes.Broker && r.Key == leaving.Id.ToString(System.Globalization.CultureInfo.InvariantCulture))
            .Select(r => JsonDocument.Parse(r.Payload).RootElement.GetProperty("change").GetString())
            .ToList();
        Assert.Equal([BrokerChanges.Registered, BrokerChanges.Unfenced, BrokerChanges.ControlledShutdown, BrokerChanges.ShutDown], changes);

        foreach (var started in brokers)
        {
            await started.DisposeAsync();
        }
    }

    [Fact]
    public async Task Controlled_shutdown_heartbeats_never_wait_on_the_controller_while_its_reconcile_rounds_ping_brokers()
    {
        // Reconcile rounds back to back and a short call timeout: a heartbeat that waits on the controller while a round
        // waits on the broker grain fails the call instead of hiding in a 30 s stall.
        await using var setup = await MetaSetup.StartAsync("shutdown-deadlock", settings: new Dictionary<string, string>
        {
            ["Meta:Controller:ReconcileInterval"] = "00:00:00.010",
            ["Meta:Runtime:CallTimeout"] = "00:00:03",
        });
        await setup.Client.CreateTopicAsync(new CreateTopicRequest("busy", 300, 3));
        var leaving = setup.Brokers[0];
        await leaving.StopHeartbeatsAsync();
        var grain = setup.Silos[0].Grains.GetGrain<IBrokerGrain>(leaving.Id.ToString(System.Globalization.CultureInfo.InvariantCulture));

        // Many heartbeats, each a chance to meet a round; the broker keeps asking until it is told it may stop.
        var told = false;
        var watch = System.Diagnostics.Stopwatch.StartNew();
        for (var i = 0; i < 150 || !told; i++)
        {
            Assert.True(watch.Elapsed < TimeSpan.FromSeconds(60), "the broker was not told it may shut down within 60 s");
            var answer = await grain.HeartbeatAsync(new BrokerHeartbeat(leaving.Epoch, long.MaxValue, WantShutDown: true));
            told |= answer.ShouldShutDown;
            await Task.Delay(10);
        }
    }

    [Fact]
    public async Task A_broker_gone_for_good_is_unregistered_only_once_its_session_ended_and_it_holds_no_replicas()
    {
        await using var setup = await MetaSetup.StartAsync("unregister", silos: 2);
        await setup.Client.CreateTopicAsync(new CreateTopicRequest("held", Assignment: [[3, 1]]));
        var http = setup.Silos[0].Http;

        var alive = await http.DeleteAsync("/v1/brokers/3");
        await AssertProblemAsync(alive, HttpStatusCode.Conflict, "BROKER_SESSION_ALIVE");

        await setup.Brokers[2].StopHeartbeatsAsync();
        await Eventually.Until(async () => (await setup.Client.ListBrokersAsync()).Brokers.Single(b => b.BrokerId == 3).State == "fenced",
            "the silent broker is fenced", TimeSpan.FromSeconds(30));
        var holding = await http.DeleteAsync("/v1/brokers/3");
        var detail = await AssertProblemAsync(holding, HttpStatusCode.Conflict, "BROKER_HAS_REPLICAS");
        Assert.Contains("held-0", detail, StringComparison.Ordinal);
        Assert.Contains("reassign", detail, StringComparison.Ordinal);

        await setup.Client.DeleteTopicAsync("held");
        var gone = await setup.Client.UnregisterBrokerAsync(3);
        Assert.Equal(3, gone.BrokerId);
        foreach (var silo in setup.Silos)
        {
            // Every silo's image drops it once it has reached the unregistration's offset.
            var brokers = await silo.Http.GetFromJsonAsync<BrokersResponse>($"/v1/brokers?minOffset={gone.MetadataOffset}");
            Assert.Equal([1, 2], brokers!.Brokers.Select(b => b.BrokerId).Order());
        }

        await AssertProblemAsync(await http.DeleteAsync("/v1/brokers/3"), HttpStatusCode.NotFound, ErrorCodes.BrokerIdNotRegistered);

        // The id is free again: a new broker with it registers like any other.
        var again = await setup.Client.RegisterBrokerAsync(3, new BrokerRegistrationRequest(Guid.NewGuid(), [new BrokerListener("PLAINTEXT", "new-3", 9092)]));
        Assert.True(again.BrokerEpoch > setup.Brokers[2].Epoch);
    }

    private static async Task<string> AssertProblemAsync(HttpResponseMessage response, HttpStatusCode status, string code)
    {
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == status, $"expected {(int)status}, got {(int)response.StatusCode}: {body}");
        using var problem = JsonDocument.Parse(body);
        Assert.Equal(code, problem.RootElement.GetProperty("code").GetString());
        return problem.RootElement.GetProperty("detail").GetString()!;
    }

    internal static Task WaitReadyAsync(SiloHandle silo) => Eventually.Until(async () => (await silo.Http.GetAsync("/health/ready")).IsSuccessStatusCode,
        $"{silo.Name} is ready", TimeSpan.FromSeconds(60));
}

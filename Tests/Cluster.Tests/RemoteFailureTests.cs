using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using OrleansMeta.Cluster.Tests.Infrastructure;
using OrleansMeta.Contracts;
using OrleansMeta.GrainInterfaces;
using OrleansMeta.Runtime;
using OrleansMeta.Runtime.Cluster;
using OrleansMeta.Runtime.Placement;
using Xunit.Abstractions;

namespace OrleansMeta.Cluster.Tests;

/// <summary>A failure on the silo that owns a grain means to a caller on another silo what it means locally.</summary>
public sealed class RemoteFailureTests(ITestOutputHelper output)
{
    [Fact]
    public async Task A_database_error_on_the_owning_silo_reaches_a_caller_on_another_silo_as_a_retryable_503_not_a_500()
    {
        // Seen under chaos (seed 8, a PostgreSQL restart): the owner's topic grain failed on a cut connection and the
        // silo that forwarded the call answered 500 UNKNOWN_SERVER_ERROR.
        await using var cluster = new TestCluster("remote-db-error");
        await using var owner = await HookedSilo.StartAsync(cluster, "owner");
        var caller = await cluster.StartInProcessSiloAsync();
        await BrokerSafetyTests.WaitReadyAsync(owner);
        await BrokerSafetyTests.WaitReadyAsync(caller);
        var membership = caller.Services.GetRequiredService<IClusterMembership>();
        await Eventually.Until(() => membership.CurrentView.ActiveSilos.Count == 2
            && owner.Services.GetRequiredService<IClusterMembership>().CurrentView.ActiveSilos.Count == 2, "both silos are active in both views");

        // A topic whose grain lives on the owner: its creation reads the log head there (to decide on a current image).
        var active = membership.CurrentView.ActiveSilos;
        var name = Enumerable.Range(0, 1000).Select(i => $"remote-{i}")
            .First(n => RendezvousPlacement.Owner(new GrainId("topic", TopicKeys.For(n)), active)!.Endpoint == owner.SiloEndpoint);

        owner.Log.FailNextHeadReads();
        using var response = await caller.Http.PostAsJsonAsync("/v1/topics", new { name, partitions = 1, replicationFactor = 1 });
        var body = await response.Content.ReadFromJsonAsync<JsonElement>();
        output.WriteLine($"{(int)response.StatusCode} {body}");

        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.Equal(ErrorCodes.Unavailable, body.GetProperty("code").GetString());
        Assert.True(body.GetProperty("retryable").GetBoolean());

        // The same call made on the owner itself, where the error is local, answers alike.
        owner.Log.FailNextHeadReads();
        using var local = await owner.Http.PostAsJsonAsync("/v1/topics", new { name, partitions = 1, replicationFactor = 1 });
        var localBody = await local.Content.ReadFromJsonAsync<JsonElement>();
        output.WriteLine($"{(int)local.StatusCode} {localBody}");
        Assert.Equal((HttpStatusCode.ServiceUnavailable, ErrorCodes.Unavailable, true),
            (local.StatusCode, localBody.GetProperty("code").GetString(), localBody.GetProperty("retryable").GetBoolean()));
    }
}

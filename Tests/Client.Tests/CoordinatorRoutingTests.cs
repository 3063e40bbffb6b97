using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using OrleansMeta.Contracts;

namespace OrleansMeta.Client.Tests;

/// <summary>A consumer group's heartbeats, commits and fetches go to the group's coordinator once a silo has named it,
/// and back to the bootstrap silos when a call there fails.</summary>
public sealed class CoordinatorRoutingTests
{
    private static readonly CommitOffsetsRequest Commit = new(null, -1, [new PartitionOffset("orders", 0, 42)]);

    [Fact]
    public async Task After_a_forwarding_silo_names_the_coordinator_the_groups_calls_go_there_and_other_calls_stay_on_the_bootstrap_silo()
    {
        await using var coordinator = await FakeSilo.StartAsync(MapGroupCalls);
        await using var bootstrap = await FakeSilo.StartAsync(app => MapGroupCalls(app, coordinator.Url));
        using var client = Samples.Client(bootstrap.Url);

        await client.CommitOffsetsAsync("g", Commit); // forwarded by the bootstrap silo, which names the coordinator
        await client.CommitOffsetsAsync("g", Commit);
        await client.SendGroupHeartbeatAsync("g", new GroupHeartbeatRequest("m", 0, SubscribedTopicNames: ["orders"]));
        await client.FetchOffsetsAsync("g");
        await client.CommitOffsetsAsync("other", Commit); // another group: not known yet

        Assert.Equal(2, bootstrap.Hits);
        Assert.Equal(3, coordinator.Hits);
        Assert.Equal(coordinator.Url, client.CoordinatorOf("g"));
        Assert.Equal(coordinator.Url, client.CoordinatorOf("other"));
    }

    [Fact]
    public async Task Find_coordinator_answers_the_lookup_and_routes_the_groups_next_calls_without_a_forwarded_one_first()
    {
        await using var coordinator = await FakeSilo.StartAsync(MapGroupCalls);
        await using var bootstrap = await FakeSilo.StartAsync(app => app.MapGet("/v1/groups/{groupId}/coordinator",
            (string groupId) => Results.Ok(new GroupCoordinatorResponse(groupId, coordinator.Url.AbsoluteUri, "http://127.0.0.1:1@3", "silo-1", 7))));
        using var client = Samples.Client(bootstrap.Url);

        var found = await client.FindCoordinatorAsync("g");
        await client.CommitOffsetsAsync("g", Commit);

        Assert.Equal(("g", coordinator.Url.AbsoluteUri, "silo-1", 7L), (found.GroupId, found.Url, found.SiloName, found.ViewVersion));
        Assert.Equal(1, bootstrap.Hits);
        Assert.Equal(1, coordinator.Hits);
    }

    [Fact]
    public async Task When_the_coordinator_refuses_connections_the_call_falls_back_to_the_bootstrap_silo_which_keeps_the_group_until_the_coordinator_may_be_back()
    {
        var gone = FakeSilo.RefusingUrl();
        await using var bootstrap = await FakeSilo.StartAsync(app => MapGroupCalls(app, gone));
        using var client = Samples.Client(bootstrap.Url);
        await client.CommitOffsetsAsync("g", Commit);
        Assert.Equal(gone, client.CoordinatorOf("g"));

        var response = await client.CommitOffsetsAsync("g", Commit); // to the coordinator: refused; then the bootstrap silo
        await client.CommitOffsetsAsync("g", Commit);

        Assert.Equal(1, response.Committed);
        Assert.Equal(3, bootstrap.Hits);
        Assert.Null(client.CoordinatorOf("g")); // named again by the bootstrap silo, but it failed a moment ago
    }

    [Fact]
    public async Task A_coordinator_that_is_not_serving_sends_the_groups_calls_back_to_the_bootstrap_silo()
    {
        await using var coordinator = await FakeSilo.StartAsync(app =>
            app.MapPut("/v1/groups/{groupId}/offsets", () => ErrorTests.Problem(503, ErrorCodes.Unavailable, true)));
        await using var bootstrap = await FakeSilo.StartAsync(MapGroupCalls);
        using var client = Samples.Client(bootstrap.Url);
        client.LearnCoordinator("g", coordinator.Url);

        var response = await client.CommitOffsetsAsync("g", Commit);

        Assert.Equal(1, response.Committed);
        Assert.Equal(1, coordinator.Hits);
        Assert.Equal(1, bootstrap.Hits);
        Assert.Null(client.CoordinatorOf("g"));
    }

    [Fact]
    public async Task A_refusal_from_the_coordinator_that_is_about_the_request_keeps_the_route()
    {
        await using var coordinator = await FakeSilo.StartAsync(app =>
            app.MapPut("/v1/groups/{groupId}/offsets", () => ErrorTests.Problem(409, ErrorCodes.StaleMemberEpoch, false)));
        await using var bootstrap = await FakeSilo.StartAsync(MapGroupCalls);
        using var client = Samples.Client(bootstrap.Url);
        client.LearnCoordinator("g", coordinator.Url);

        var refused = await Assert.ThrowsAsync<MetaApiException>(() => client.CommitOffsetsAsync("g", Commit));

        Assert.Equal(ErrorCodes.StaleMemberEpoch, refused.Code);
        Assert.Equal(0, bootstrap.Hits);
        Assert.Equal(coordinator.Url, client.CoordinatorOf("g"));
    }

    [Fact]
    public async Task With_routing_turned_off_every_call_goes_to_the_bootstrap_silos()
    {
        await using var coordinator = await FakeSilo.StartAsync(MapGroupCalls);
        await using var bootstrap = await FakeSilo.StartAsync(app => MapGroupCalls(app, coordinator.Url));
        using var client = Samples.Client(o => o.RouteCallsToOwner = false, bootstrap.Url);

        await client.CommitOffsetsAsync("g", Commit);
        await client.CommitOffsetsAsync("g", Commit);

        Assert.Equal(2, bootstrap.Hits);
        Assert.Equal(0, coordinator.Hits);
        Assert.Null(client.CoordinatorOf("g"));
    }

    [Fact]
    public async Task A_header_that_is_not_an_http_url_is_ignored()
    {
        await using var bootstrap = await FakeSilo.StartAsync(app => MapGroupCalls(app, new Uri("ftp://elsewhere/")));
        using var client = Samples.Client(bootstrap.Url);

        await client.CommitOffsetsAsync("g", Commit);
        await client.CommitOffsetsAsync("g", Commit);

        Assert.Equal(2, bootstrap.Hits);
        Assert.Null(client.CoordinatorOf("g"));
    }

    /// <summary>Answers a group's commits, heartbeats and fetches; with <paramref name="coordinator"/>, as a silo that
    /// forwarded them to it (naming it in the header).</summary>
    private static void MapGroupCalls(WebApplication app, Uri? coordinator)
    {
        void Name(HttpContext context) => FakeSilo.NameOwner(context, GroupHeaders.Coordinator, coordinator);

        app.MapPut("/v1/groups/{groupId}/offsets", (string groupId, HttpContext context) =>
        {
            Name(context);
            return Results.Ok(new CommitOffsetsResponse(groupId, 1));
        });
        app.MapPost("/v1/groups/{groupId}/heartbeat", (HttpContext context) =>
        {
            Name(context);
            return Results.Ok(new GroupHeartbeatResponse("m", 1, 5000, []));
        });
        app.MapGet("/v1/groups/{groupId}/offsets", (string groupId, HttpContext context) =>
        {
            Name(context);
            return Results.Ok(new GroupOffsetsResponse(groupId, []));
        });
    }

    private static void MapGroupCalls(WebApplication app) => MapGroupCalls(app, null);
}

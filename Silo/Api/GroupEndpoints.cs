using Microsoft.AspNetCore.Http.HttpResults;
using OrleansMeta.Contracts;
using OrleansMeta.GrainInterfaces;
using OrleansMeta.Grains.Groups;
using OrleansMeta.Runtime;
using OrleansMeta.Runtime.Placement;

namespace OrleansMeta.Silo.Api;

/// <summary>Consumer groups (KIP-848): member heartbeats, description, deletion, and committed offsets.</summary>
public static class GroupEndpoints
{
    public static IEndpointRouteBuilder MapGroupEndpoints(this IEndpointRouteBuilder endpoints)
    {
        var group = endpoints.MapGroup("/v1/groups").WithTags("Groups");
        group.MapPost("/{groupId}/heartbeat", HeartbeatAsync).WithName("ConsumerGroupHeartbeat")
            .WithSummary("A member's heartbeat (KIP-848): join with memberEpoch 0 and a subscription, stay with the epoch the last answer gave, " +
                "leave with -1 (-2: a static member leaving for a moment). The answer holds the member's epoch and every partition it may own now.")
            .Problems(ApiDocs.Write,
                (400, [ErrorCodes.InvalidGroupId, ErrorCodes.InvalidRegularExpression, ErrorCodes.UnsupportedAssignor, ErrorCodes.InvalidTopic]),
                (404, [ErrorCodes.UnknownMemberId]),
                (409, [ErrorCodes.FencedMemberEpoch, ErrorCodes.UnreleasedInstanceId, ErrorCodes.GroupMaxSizeReached]))
            .NamesCoordinator();
        group.MapGet("/{groupId}", DescribeAsync).WithName("DescribeGroup")
            .WithSummary("The group's state, epochs, assignor, members with their assignments, and committed offsets.")
            .Problems(ApiDocs.Read, (400, [ErrorCodes.InvalidGroupId]), (404, [ErrorCodes.GroupIdNotFound]));
        group.MapDelete("/{groupId}", DeleteAsync).WithName("DeleteGroup")
            .WithSummary("Deletes an empty group and its offsets (NON_EMPTY_GROUP while it has members).")
            .Problems(ApiDocs.Write, (400, [ErrorCodes.InvalidGroupId]), (404, [ErrorCodes.GroupIdNotFound]), (409, [ErrorCodes.NonEmptyGroup]));
        group.MapPut("/{groupId}/offsets", CommitAsync).WithName("CommitOffsets")
            .WithSummary("Commits offsets, durable when answered; setting the same offsets again is harmless, so a timed-out commit may be resent. Members commit with their memberId and current memberEpoch; " +
                "with memberEpoch -1 and no memberId only while the group has no members (admin tools, assign() consumers).")
            .Problems(ApiDocs.Write,
                (400, [ErrorCodes.InvalidGroupId, ErrorCodes.InvalidTopic]),
                (404, [ErrorCodes.UnknownMemberId, ErrorCodes.UnknownTopicOrPartition]),
                (409, [ErrorCodes.StaleMemberEpoch, ErrorCodes.FencedMemberEpoch]))
            .NamesCoordinator();
        group.MapGet("/{groupId}/offsets", FetchAsync).WithName("FetchOffsets")
            .WithSummary("The group's committed offsets, all of them or those of the topics named by 'topic' (repeatable).")
            .Problems(ApiDocs.Read, (400, [ErrorCodes.InvalidGroupId, ErrorCodes.InvalidTopic]))
            .NamesCoordinator();
        group.MapDelete("/{groupId}/offsets", DeleteOffsetsAsync).WithName("DeleteOffsets")
            .WithSummary("Deletes the offsets of the topics named by 'topic' (repeatable), or all of an empty group's.")
            .Problems(ApiDocs.Write, (400, [ErrorCodes.InvalidGroupId, ErrorCodes.InvalidTopic]), (409, [ErrorCodes.GroupSubscribedToTopic, ErrorCodes.NonEmptyGroup]));
        group.MapPost("/{groupId}/offsets/reset", ResetAsync).WithName("ResetOffsets")
            .WithSummary("Sets offsets of an empty group (kafka-consumer-groups --reset-offsets). With dryRun, answers what would be written.")
            .Problems(ApiDocs.Write, (400, [ErrorCodes.InvalidGroupId, ErrorCodes.InvalidTopic]),
                (404, [ErrorCodes.UnknownTopicOrPartition]), (409, [ErrorCodes.NonEmptyGroup]));
        group.MapGet("/{groupId}/coordinator", FindCoordinator).WithName("FindCoordinator")
            .WithSummary("Which silo coordinates the group (Kafka's FindCoordinator): its public URL, incarnation and name, and the membership view version " +
                "the answer was computed on. Any silo serves every group call; sent to the coordinator, heartbeats and commits skip a forwarding hop. " +
                $"A group call that another silo forwarded answers with the coordinator's URL in the {GroupHeaders.Coordinator} header.")
            .Problems(ApiDocs.Plain, (400, [ErrorCodes.InvalidGroupId]));
        return endpoints;
    }

    /// <summary>A group call that this silo forwarded names the coordinator's URL: the client sends the group's next
    /// calls there without asking.</summary>
    private static RouteHandlerBuilder NamesCoordinator(this RouteHandlerBuilder builder)
        => builder.NamesOwner<IConsumerGroupGrain>(context => context.HttpContext.Request.RouteValues["groupId"] as string, GroupHeaders.Coordinator);

    private static async Task<Ok<GroupHeartbeatResponse>> HeartbeatAsync(string groupId, GroupHeartbeatRequest request, IGrainFactory grains)
        => TypedResults.Ok(await Group(grains, groupId).HeartbeatAsync(request));

    private static async Task<Ok<GroupDescription>> DescribeAsync(string groupId, IGrainFactory grains)
        => TypedResults.Ok(await Group(grains, groupId).DescribeAsync());

    private static async Task<Ok<DeleteGroupResponse>> DeleteAsync(string groupId, IGrainFactory grains)
    {
        await Group(grains, groupId).DeleteAsync();
        return TypedResults.Ok(new DeleteGroupResponse(groupId));
    }

    private static async Task<Ok<CommitOffsetsResponse>> CommitAsync(string groupId, CommitOffsetsRequest request, IGrainFactory grains)
    {
        await Group(grains, groupId).CommitAsync(request);
        return TypedResults.Ok(new CommitOffsetsResponse(groupId, request.Offsets.Count));
    }

    private static async Task<Ok<GroupOffsetsResponse>> FetchAsync(string groupId, string[]? topic, IGrainFactory grains)
        => TypedResults.Ok(new GroupOffsetsResponse(groupId, await Group(grains, groupId).FetchAsync(topic is { Length: > 0 } ? topic : null)));

    private static async Task<Ok<DeleteGroupOffsetsResponse>> DeleteOffsetsAsync(string groupId, string[]? topic, IGrainFactory grains)
        => TypedResults.Ok(new DeleteGroupOffsetsResponse(groupId, await Group(grains, groupId).DeleteOffsetsAsync(topic is { Length: > 0 } ? topic : null)));

    private static async Task<Ok<GroupOffsetsResponse>> ResetAsync(string groupId, ResetOffsetsRequest request, IGrainFactory grains)
        => TypedResults.Ok(new GroupOffsetsResponse(groupId, await Group(grains, groupId).ResetAsync(request)));

    private static Ok<GroupCoordinatorResponse> FindCoordinator(string groupId, GrainLocator locator, Runtime.Cluster.IClusterMembership membership)
    {
        GroupRules.ValidateGroupId(groupId);

        // A silo that is not serving may hold a stale view (cut off from the membership table), and one with no active
        // silo in its view knows no owner: either way another silo, or this one a moment later, answers.
        var location = locator.Locate<IConsumerGroupGrain>(groupId);
        if (location.Owner is not { } owner || !membership.IsActive)
        {
            throw new Runtime.Activation.SiloUnavailableException(
                $"This silo cannot name the coordinator of group '{groupId}' now: it is not serving or no silo is active in its view (version {location.ViewVersion}); retry, another silo may answer.");
        }

        return TypedResults.Ok(new GroupCoordinatorResponse(groupId, owner.ClientUrl, owner.Address.ToString(), owner.Name, location.ViewVersion));
    }

    /// <summary>The group's grain, once its id is known to be valid (a bad id activates nothing).</summary>
    private static IConsumerGroupGrain Group(IGrainFactory grains, string groupId)
    {
        GroupRules.ValidateGroupId(groupId);
        return grains.GetGrain<IConsumerGroupGrain>(groupId);
    }
}

using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using OrleansMeta.Client;
using OrleansMeta.Cluster.Tests.Infrastructure;
using OrleansMeta.Contracts;
using OrleansMeta.Grains.Metadata;

namespace OrleansMeta.Cluster.Tests;

/// <summary>Consumer-group changes in the metadata log: watched through the SDK, and held by every silo's image.</summary>
public sealed class GroupWatchTests
{
    private static readonly Dictionary<string, string> FastGroups = GroupSettings.Fast(TimeSpan.FromSeconds(5));

    [Fact]
    public async Task A_watcher_of_a_group_follows_joins_rebalances_leaves_and_deletion_and_every_image_agrees_with_the_coordinator()
    {
        await using var setup = await MetaSetup.StartAsync("groups-watch", silos: 2, settings: FastGroups);
        await setup.Client.CreateTopicAsync(new CreateTopicRequest("orders", 6, 3));
        await setup.Client.CreateTopicAsync(new CreateTopicRequest("other", 1, 3));

        // The watcher names group "gw" only: records of another group, topics and brokers must not reach it.
        using var watching = new CancellationTokenSource();
        var view = new WatchedGroups();
        var watcher = Task.Run(async () =>
        {
            await foreach (var item in setup.Client.WatchAsync(new WatchFilter { Groups = ["gw"] }, fromOffset: 1, watching.Token))
            {
                view.Apply(item);
            }
        });

        var first = new GroupConsumer(setup.Client, new GroupConsumerOptions { GroupId = "gw", Topics = ["orders"], RackId = "rack-a" });
        var second = new GroupConsumer(setup.Client, new GroupConsumerOptions { GroupId = "gw", Topics = ["orders"], RackId = "rack-b" });
        await using var bystander = new GroupConsumer(setup.Client, new GroupConsumerOptions { GroupId = "other-group", Topics = ["other"] });
        await bystander.StartAsync();
        await first.StartAsync();
        await second.StartAsync();
        await Eventually.Until(async () => (await setup.Client.DescribeGroupAsync("gw")).State == "stable" && first.Assignment.Count == 3 && second.Assignment.Count == 3,
            "two members own three partitions each", TimeSpan.FromSeconds(30));
        await AssertAgreeAsync(setup, view, "gw");
        Assert.Equal(["rack-a", "rack-b"], view.Members("gw").Select(m => m.RackId!).Order(StringComparer.Ordinal));
        Assert.All(view.Keys, key => Assert.StartsWith("gw", key, StringComparison.Ordinal));

        // One member leaves: its removal and the other's new assignment are logged.
        await second.DisposeAsync();
        await Eventually.Until(async () => (await setup.Client.DescribeGroupAsync("gw")).State == "stable" && first.Assignment.Count == 6,
            "the remaining member owns all six partitions", TimeSpan.FromSeconds(30));
        await AssertAgreeAsync(setup, view, "gw");
        Assert.Single(view.Members("gw"));

        // The group is deleted once empty: the watcher sees it dead, and every image drops it.
        await first.DisposeAsync();
        await Eventually.Until(async () => (await setup.Client.DescribeGroupAsync("gw")).State == "empty", "the group is empty", TimeSpan.FromSeconds(10));
        await setup.Client.DeleteGroupAsync("gw");
        await Eventually.Until(() => Task.FromResult(view.Deleted("gw")), "the watcher sees the group deleted", TimeSpan.FromSeconds(10));
        foreach (var silo in setup.Silos)
        {
            var image = silo.Services.GetRequiredService<MetadataImageService>();
            await Eventually.Until(() => Task.FromResult(!image.Current.Groups.ContainsKey("gw")), "every image drops the deleted group", TimeSpan.FromSeconds(10));
            Assert.True(image.Current.Groups.ContainsKey("other-group"), "the other group is still in the image");
        }

        await watching.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => watcher);
        Assert.True(view.InOrder, "records arrived in offset order with no duplicate");
    }

    /// <summary>The watcher's view, each silo's image and the coordinator's description hold the same group.</summary>
    private static async Task AssertAgreeAsync(MetaSetup setup, WatchedGroups view, string groupId)
    {
        var described = await setup.Client.DescribeGroupAsync(groupId);
        var expected = Canonical(described.State, described.GroupEpoch, described.AssignmentEpoch, described.Members);
        await Eventually.Until(() => Task.FromResult(view.Canonical(groupId) == expected), "the watcher's view equals the description", TimeSpan.FromSeconds(10));
        await AssertImagesAgreeAsync(setup, groupId);
    }

    /// <summary>Every silo's image holds the group as its coordinator describes it (the group must be quiet: no change
    /// in flight).</summary>
    internal static async Task AssertImagesAgreeAsync(MetaSetup setup, string groupId)
    {
        var described = await setup.Client.DescribeGroupAsync(groupId);
        var expected = Canonical(described.State, described.GroupEpoch, described.AssignmentEpoch, described.Members);
        foreach (var silo in setup.Silos)
        {
            var image = silo.Services.GetRequiredService<MetadataImageService>();
            await Eventually.Until(() => Task.FromResult(image.Current.Groups.TryGetValue(groupId, out var group)
                && Canonical(group.Group.State, group.Group.GroupEpoch, group.Group.AssignmentEpoch, group.Members.Values) == expected),
                "every silo's image equals the description", TimeSpan.FromSeconds(10));
        }
    }

    private static string Canonical(string state, int groupEpoch, int assignmentEpoch, IEnumerable<GroupMemberDescription> members)
        => JsonSerializer.Serialize(new { state, groupEpoch, assignmentEpoch, members = members.OrderBy(m => m.MemberId, StringComparer.Ordinal) });

    /// <summary>Groups as a watcher rebuilds them from group and group-member records.</summary>
    private sealed class WatchedGroups
    {
        private readonly Lock _lock = new();
        private readonly Dictionary<string, GroupRecord> _groups = new(StringComparer.Ordinal);
        private readonly Dictionary<string, Dictionary<string, GroupMemberDescription>> _members = new(StringComparer.Ordinal);
        private readonly HashSet<string> _deleted = new(StringComparer.Ordinal);
        private readonly List<string> _keys = [];
        private long _last;

        public bool InOrder { get; private set; } = true;

        public IReadOnlyList<string> Keys
        {
            get
            {
                lock (_lock)
                {
                    return [.. _keys];
                }
            }
        }

        public void Apply(WatchEvent item)
        {
            if (item.Kind != WatchEventKinds.Record || item.Record is not { } record)
            {
                return;
            }

            lock (_lock)
            {
                InOrder &= item.Offset > _last;
                _last = item.Offset;
                _keys.Add(item.Key!);
                if (item.Type == "group")
                {
                    var group = record.Deserialize<GroupRecord>(JsonSerializerOptions.Web)!;
                    if (group.Deleted)
                    {
                        _groups.Remove(group.GroupId);
                        _members.Remove(group.GroupId);
                        _deleted.Add(group.GroupId);
                    }
                    else
                    {
                        _groups[group.GroupId] = group;
                    }
                }
                else if (item.Type == "group-member")
                {
                    var member = record.Deserialize<GroupMemberRecord>(JsonSerializerOptions.Web)!;
                    var members = _members.TryGetValue(member.GroupId, out var known) ? known : _members[member.GroupId] = new(StringComparer.Ordinal);
                    if (member.Member is { } description)
                    {
                        members[member.MemberId] = description;
                    }
                    else
                    {
                        members.Remove(member.MemberId);
                    }
                }
                else
                {
                    InOrder = false; // nothing but group records may pass this filter
                }
            }
        }

        public List<GroupMemberDescription> Members(string groupId)
        {
            lock (_lock)
            {
                return _members.TryGetValue(groupId, out var members) ? [.. members.Values] : [];
            }
        }

        public bool Deleted(string groupId)
        {
            lock (_lock)
            {
                return _deleted.Contains(groupId) && !_groups.ContainsKey(groupId);
            }
        }

        public string? Canonical(string groupId)
        {
            lock (_lock)
            {
                return _groups.TryGetValue(groupId, out var group)
                    ? GroupWatchTests.Canonical(group.State, group.GroupEpoch, group.AssignmentEpoch, _members.TryGetValue(groupId, out var members) ? members.Values : [])
                    : null;
            }
        }
    }
}

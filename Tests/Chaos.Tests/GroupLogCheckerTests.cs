using System.Text.Json;
using OrleansMeta.Contracts;
using OrleansMeta.GrainInterfaces;

namespace OrleansMeta.Chaos.Tests;

/// <summary>The rule "no partition belongs to two members of a group after any group record of the log" can fail:
/// a log that gives a partition to a second member is flagged, naming the offset, the partition and both members;
/// partitions handed over properly, removals and deletions pass.</summary>
public sealed class GroupLogCheckerTests
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);
    private static readonly Guid Topic = Guid.Parse("6f1c1e7a-0000-4000-8000-000000000001");

    private static LogEntry Header(long offset, string group, bool deleted = false)
        => new(offset, RecordTypes.Group, group, JsonSerializer.SerializeToUtf8Bytes(new GroupRecord(group, "reconciling", 1, 1, "uniform", deleted), Json));

    private static LogEntry Member(long offset, string group, string member, int[] assigned, int[]? pending = null)
        => new(offset, RecordTypes.GroupMember, RecordTypes.GroupMemberKey(group, member), JsonSerializer.SerializeToUtf8Bytes(new GroupMemberRecord(group, member,
            new GroupMemberDescription(member, null, null, null, 1, "stable", ["t"], null, Partitions(assigned), Partitions(pending ?? []), [])), Json));

    private static LogEntry Left(long offset, string group, string member)
        => new(offset, RecordTypes.GroupMember, RecordTypes.GroupMemberKey(group, member), JsonSerializer.SerializeToUtf8Bytes(new GroupMemberRecord(group, member, null), Json));

    private static IReadOnlyList<GroupTopicPartitions> Partitions(int[] partitions) => partitions.Length == 0 ? [] : [new GroupTopicPartitions(Topic, "t", partitions)];

    private static IReadOnlyList<string> Violations(params LogEntry[] entries)
        => HistoryChecker.GroupLogOneOwner(MetadataLog.Replay(entries, entries.Length)).Violations;

    [Fact]
    public void A_partition_revoked_acknowledged_and_then_given_to_another_member_passes()
        => Assert.Empty(Violations(
            Header(1, "g"), Member(2, "g", "a", [0, 1]), Member(3, "g", "b", []),
            Member(4, "g", "a", [0], pending: [1]), // 1 is being revoked from a: a still owns it
            Member(5, "g", "a", [0]),               // a acknowledged
            Member(6, "g", "b", [1])));

    [Fact]
    public void A_partition_given_while_its_revocation_is_pending_is_flagged()
        => Assert.Equal(
            [$"offset 5: group g gives {Topic:N}/1 to member b while member a owns it"],
            Violations(Header(1, "g"), Member(2, "g", "a", [0, 1]), Member(3, "g", "b", []), Member(4, "g", "a", [0], pending: [1]), Member(5, "g", "b", [1])));

    [Fact]
    public void A_removed_member_and_a_deleted_group_free_their_partitions_and_groups_do_not_share_owners()
        => Assert.Empty(Violations(
            Header(1, "g"), Member(2, "g", "a", [0, 1]), Left(3, "g", "a"), Member(4, "g", "b", [0, 1]),
            Header(5, "h"), Member(6, "h", "c", [0, 1]), // another group consumes the same partitions
            Header(7, "g", deleted: true), Header(8, "g"), Member(9, "g", "d", [0, 1])));

    [Fact]
    public void The_log_rule_is_always_checked()
        => Assert.Contains("group-log-one-owner", HistoryChecker.Check([], MetadataLog.Replay([], 0), new Dictionary<string, MetadataResponse>()).Select(i => i.Name));
}

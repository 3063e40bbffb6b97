using System.Text.Json;
using OrleansMeta.GrainInterfaces;

namespace OrleansMeta.Chaos.Tests;

/// <summary>The rule "every watcher saw every offset once, in order" can fail: each trace with a known fault is
/// flagged, naming the watcher and the offsets, and healthy traces (including one resumed after a snapshot) pass.</summary>
public sealed class WatcherCheckerTests
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    /// <summary>Brokers 1 to 4 registered at offsets 1 to 4.</summary>
    private static MetadataLog Log() => MetadataLog.Replay(
        Enumerable.Range(1, 4).Select(i => new LogEntry(i, RecordTypes.Broker, $"{i}",
            JsonSerializer.SerializeToUtf8Bytes(new BrokerRecord(i, Guid.NewGuid(), 0, [], null, BrokerStates.Fenced, 0, BrokerChanges.Registered), Json))),
        head: 4);

    private static WatchedEvent At(long offset) => WatchedEvent.Record(offset, RecordTypes.Broker, $"{offset}");

    private static IReadOnlyList<string> Violations(params WatcherTrace[] watchers)
        => HistoryChecker.WatchersSawEveryOffset(Log(), watchers).Violations;

    [Fact]
    public void Every_offset_once_in_order_passes()
        => Assert.Empty(Violations(WatcherTrace.Of("w", At(1), At(2), At(3), At(4))));

    [Fact]
    public void A_snapshot_stands_for_the_offsets_it_covers()
        => Assert.Empty(Violations(WatcherTrace.Of("w", At(1), WatchedEvent.Snapshot(3), At(4))));

    [Fact]
    public void Records_past_the_head_the_log_was_read_at_are_not_judged()
        => Assert.Empty(Violations(WatcherTrace.Of("w", At(1), At(2), At(3), At(4), WatchedEvent.Record(5, RecordTypes.GroupMember, "g/m"))));

    [Fact]
    public void A_missing_offset_is_flagged()
        => Assert.Contains("w: offsets 2..2 never delivered before 3", Violations(WatcherTrace.Of("w", At(1), At(3), At(4))));

    [Fact]
    public void An_offset_delivered_twice_is_flagged()
        => Assert.Contains("w: offset 2 delivered again (or out of order) after 2", Violations(WatcherTrace.Of("w", At(1), At(2), At(2), At(3), At(4))));

    [Fact]
    public void A_watcher_that_stopped_short_of_the_head_is_flagged()
        => Assert.Contains("w: reached offset 3, not the head 4", Violations(WatcherTrace.Of("w", At(1), At(2), At(3))));

    [Fact]
    public void A_record_that_is_not_the_logs_is_flagged()
        => Assert.Contains(Violations(WatcherTrace.Of("w", At(1), WatchedEvent.Record(2, RecordTypes.Topic, "t"), At(3), At(4))),
            v => v.StartsWith("w: offset 2 delivered as topic t", StringComparison.Ordinal));

    [Fact]
    public void A_snapshot_behind_what_was_delivered_is_flagged()
        => Assert.Contains(Violations(WatcherTrace.Of("w", At(1), At(2), At(3), WatchedEvent.Snapshot(1), At(2), At(3), At(4))),
            v => v.StartsWith("w: a snapshot at 1 went back", StringComparison.Ordinal));

    [Fact]
    public void A_watch_that_ended_by_itself_is_flagged()
    {
        var trace = WatcherTrace.Of("w", At(1), At(2), At(3), At(4));
        trace.Error = "MetaApiException: refused";
        Assert.Contains("w: the watch ended by itself: MetaApiException: refused", Violations(trace));
    }
}

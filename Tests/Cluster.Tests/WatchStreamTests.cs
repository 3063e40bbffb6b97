using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using OrleansMeta.Contracts;
using OrleansMeta.GrainInterfaces;
using OrleansMeta.Grains.Metadata;
using OrleansMeta.Runtime.Persistence;
using OrleansMeta.Silo.Watch;

namespace OrleansMeta.Cluster.Tests;

/// <summary>
/// A silo's watch streams over a log held in memory (so a test can remove a prefix as retention will, and hold a
/// reader back): the real image service, hub and sessions, without HTTP in between.
/// </summary>
public sealed class WatchStreamTests
{
    private static readonly Guid TopicA = Guid.NewGuid();
    private static readonly Guid TopicB = Guid.NewGuid();

    [Fact]
    public async Task An_offset_the_log_no_longer_holds_is_answered_with_a_marked_snapshot_and_then_the_live_tail()
    {
        await using var silo = await Harness.StartAsync(new WatchOptions { RingCapacity = 2, MaxLagRecords = 2 });
        silo.AppendSample(); // 1..6: brokers, two topics, a partition change, a controller.
        await silo.WaitForImageAsync();
        var head = silo.Log.Head;
        silo.Log.RemoveThrough(head - 3); // Retention took all but the last three; the ring holds the last two.

        var session = silo.Watch(WatchSelection.All, from: 1);
        await Eventually.Until(() => session.Events.Any(e => e.Name == "snapshot-end"), "the snapshot ends");
        silo.Log.Append(RecordTypes.Controller, "cluster", new ControllerRecord(9, "silo-9"));
        await Eventually.Until(() => session.Events.Any(e => e.Id == head + 1), "the record after the snapshot arrives");

        var events = session.Events;
        Assert.Equal("snapshot-start", events[0].Name);
        Assert.Null(events[0].Id);
        var end = events.FindIndex(e => e.Name == "snapshot-end");
        Assert.Equal(head, end >= 0 ? events[end].Id : null);
        Assert.All(events.Skip(1).Take(end - 1), e => Assert.Equal(("snapshot", null), (e.Name, e.Id)));

        // The snapshot is the image's state: both topics with their current partitions, the brokers, the controller.
        var items = events.Skip(1).Take(end - 1).Select(e => e.Data).ToList();
        Assert.Contains(items, d => d.GetProperty("type").GetString() == "controller");
        Assert.Equal(2, items.Count(d => d.GetProperty("type").GetString() == "broker"));
        var a = items.Single(d => d.GetProperty("key").GetString() == "a").GetProperty("record");
        Assert.Equal(7, a.GetProperty("initialPartitions")[0].GetProperty("leaderEpoch").GetInt32());
        Assert.Equal([head + 1], events.Skip(end + 1).Select(e => e.Id!.Value));
    }

    [Fact]
    public async Task A_watcher_from_an_older_offset_reads_the_log_then_joins_the_ring_without_a_gap_or_a_duplicate()
    {
        await using var silo = await Harness.StartAsync(new WatchOptions { RingCapacity = 4, MaxLagRecords = 4, LogPageSize = 3 });
        for (var i = 0; i < 20; i++)
        {
            silo.Log.Append(RecordTypes.Controller, "cluster", new ControllerRecord(i + 1, "silo"));
        }

        await silo.WaitForImageAsync();
        var session = silo.Watch(WatchSelection.All, from: 2);
        for (var i = 20; i < 30; i++)
        {
            silo.Log.Append(RecordTypes.Controller, "cluster", new ControllerRecord(i + 1, "silo"));
        }

        await Eventually.Until(() => session.Events.Any(e => e.Id == 30), "the watcher reaches offset 30");
        Assert.Equal(Enumerable.Range(2, 29).Select(i => (long?)i), session.Events.Select(e => e.Id));
        Assert.All(session.Events, e => Assert.Equal("controller", e.Name));
    }

    [Fact]
    public async Task A_reader_that_falls_behind_the_live_tail_is_cut_off_with_the_offset_to_resume_from_and_nothing_is_skipped()
    {
        await using var silo = await Harness.StartAsync(new WatchOptions { RingCapacity = 1000, MaxLagRecords = 10, MaxLagTime = TimeSpan.Zero });
        silo.Log.Append(RecordTypes.Controller, "cluster", new ControllerRecord(1, "silo"));
        await silo.WaitForImageAsync();
        var session = silo.Watch(WatchSelection.All, from: 1);
        await Eventually.Until(() => session.Events.Any(e => e.Id == 1), "the first record arrives");

        // The reader stops reading; meanwhile the log moves on far past the lag bound.
        session.Body.Hold();
        silo.Log.Append(RecordTypes.Controller, "cluster", new ControllerRecord(2, "silo"));
        await Eventually.Until(() => session.Body.Blocked, "the session waits for the reader");
        for (var i = 3; i <= 200; i++)
        {
            silo.Log.Append(RecordTypes.Controller, "cluster", new ControllerRecord(i, "silo"));
        }

        await silo.WaitForImageAsync();
        Assert.True(silo.Hub.Size.Records <= 1000, "the ring is bounded");
        session.Body.Release();
        await session.Completion.WaitAsync(TimeSpan.FromSeconds(30));

        var events = session.Events;
        var cut = events[^1];
        Assert.Equal("cut-off", cut.Name);
        var ids = events.Where(e => e.Id is not null).Select(e => e.Id!.Value).ToList();
        Assert.Equal(Enumerable.Range(1, ids.Count).Select(i => (long)i), ids);
        Assert.Equal(ids[^1] + 1, cut.Data.GetProperty("resumeFrom").GetInt64());
        Assert.True(ids[^1] < 200, "the reader was cut off before the end, not buffered up to it");
    }

    [Fact]
    public async Task Filters_pass_the_records_that_concern_the_named_topics_prefix_brokers_and_kinds()
    {
        await using var silo = await Harness.StartAsync(new WatchOptions());
        silo.AppendSample();
        await silo.WaitForImageAsync();

        async Task<List<string>> KeysAsync(WatchSelection selection)
        {
            var session = silo.Watch(selection, from: 1);
            await Eventually.Until(() => session.Progress >= silo.Log.Head || session.Events.Any(e => e.Id == silo.Log.Head),
                "the watcher has passed the head", TimeSpan.FromSeconds(10));
            return [.. session.Events.Where(e => e.Id is not null && e.Name != "progress").Select(e => e.Name + ":" + e.Data.GetProperty("key").GetString())];
        }

        var none = new HashSet<string>();
        var noBrokers = new HashSet<int>();
        Assert.Equal(["topic:a", $"partition:{TopicA:N}/0"], await KeysAsync(new WatchSelection(none, new HashSet<string> { "a" }, null, noBrokers, none)));
        Assert.Equal(["topic:b-1"], await KeysAsync(new WatchSelection(new HashSet<string> { "topic" }, none, "b-", noBrokers, none)));
        Assert.Equal(["broker:2", "topic:b-1"], await KeysAsync(new WatchSelection(none, none, null, new HashSet<int> { 2 }, none)));
        Assert.Equal(["broker:1", "broker:2"], await KeysAsync(new WatchSelection(new HashSet<string> { "broker" }, none, null, noBrokers, none)));
        Assert.Equal(["controller:cluster"], await KeysAsync(new WatchSelection(new HashSet<string> { "controller" }, none, null, noBrokers, none)));
    }

    [Fact]
    public async Task Group_records_pass_the_filters_that_name_their_group_and_a_snapshot_holds_each_live_group_with_its_members()
    {
        await using var silo = await Harness.StartAsync(new WatchOptions());
        silo.AppendSample();
        var first = silo.Log.Head + 1;
        silo.AppendGroup("g1", "m1", "m2");
        silo.AppendGroup("g2", "m3");
        silo.Log.Append(RecordTypes.GroupMember, "g1/m1", new GroupMemberRecord("g1", "m1", null)); // m1 left
        silo.Log.Append(RecordTypes.Group, "g2", new GroupRecord("g2", "dead", 1, 1, "uniform", Deleted: true));
        await silo.WaitForImageAsync();

        async Task<List<string>> KeysAsync(WatchSelection selection, long? from)
        {
            var session = silo.Watch(selection, from);
            await Eventually.Until(() => session.Progress >= silo.Log.Head || session.Events.Any(e => e.Id == silo.Log.Head || e.Name == "snapshot-end"),
                "the watcher has passed the head", TimeSpan.FromSeconds(10));
            return [.. session.Events.Where(e => e.Name is not ("progress" or "snapshot-start" or "snapshot-end"))
                .Select(e => e.Data.GetProperty("kind").GetString() + ":" + e.Data.GetProperty("type").GetString() + ":" + e.Data.GetProperty("key").GetString())];
        }

        var none = new HashSet<string>();
        var noBrokers = new HashSet<int>();
        var g1 = new HashSet<string> { "g1" };
        Assert.Equal(["record:group:g1", "record:group-member:g1/m1", "record:group-member:g1/m2", "record:group-member:g1/m1"],
            await KeysAsync(new WatchSelection(none, none, null, noBrokers, g1), first));
        Assert.Equal(["record:group:g1", "record:group:g2", "record:group:g2"],
            await KeysAsync(new WatchSelection(new HashSet<string> { "group" }, none, null, noBrokers, none), first));

        // A filter naming topics (and no group) passes no group record; one naming a group passes no topic record.
        Assert.DoesNotContain(await KeysAsync(new WatchSelection(none, new HashSet<string> { "a" }, null, noBrokers, none), first), k => k.Contains(":group", StringComparison.Ordinal));

        // A snapshot (no offset given) holds the image's groups: g1 with its remaining member; g2 was deleted.
        Assert.Equal(["snapshot:group:g1", "snapshot:group-member:g1/m2"], await KeysAsync(new WatchSelection(none, none, null, noBrokers, new HashSet<string> { "g1", "g2" }), null));
        var image = silo.Images.Current;
        Assert.Equal(["g1"], image.Groups.Keys);
        Assert.Equal(["m2"], image.Groups["g1"].Members.Keys);
    }

    /// <summary>An image service, hub and sessions over a <see cref="MemoryLog"/>.</summary>
    private sealed class Harness : IAsyncDisposable
    {
        private readonly List<(WatchSession Session, Task Run, CancellationTokenSource Stop)> _sessions = [];
        private readonly WatchOptions _options;

        private Harness(MemoryLog log, MetadataImageService images, WatchHub hub, WatchOptions options)
        {
            Log = log;
            Images = images;
            Hub = hub;
            _options = options;
        }

        public MemoryLog Log { get; }

        public MetadataImageService Images { get; }

        public WatchHub Hub { get; }

        public static async Task<Harness> StartAsync(WatchOptions options)
        {
            options.KeepAliveInterval = TimeSpan.FromMilliseconds(200);
            var log = new MemoryLog();
            var images = new MetadataImageService(log, NullLogger<MetadataImageService>.Instance);
            var hub = new WatchHub(images, Options.Create(options));
            await images.StartAsync(CancellationToken.None);
            return new Harness(log, images, hub, options);
        }

        public Task WaitForImageAsync() => Images.WaitForAsync(Log.Head, TimeSpan.FromSeconds(10));

        /// <summary>Brokers 1 and 2; topic a (replica on broker 1) with a leader change; topic b-1 (replica on broker 2); a controller.</summary>
        public void AppendSample()
        {
            Log.Append(RecordTypes.Broker, "1", new BrokerRecord(1, Guid.NewGuid(), 0, [], null, BrokerStates.Fenced, 0, BrokerChanges.Registered));
            Log.Append(RecordTypes.Broker, "2", new BrokerRecord(2, Guid.NewGuid(), 0, [], null, BrokerStates.Fenced, 0, BrokerChanges.Registered));
            var a = new PartitionState(0, [1], [1], 1, 0, 0);
            Log.Append(RecordTypes.Topic, "a", new TopicRecord("a", TopicA, 1, new Dictionary<string, string>(), [a], false, "created"));
            Log.Append(RecordTypes.Topic, "b-1", new TopicRecord("b-1", TopicB, 1, new Dictionary<string, string>(), [new PartitionState(0, [2], [2], 2, 0, 0)], false, "created"));
            Log.Append(RecordTypes.Partition, PartitionKeys.For(TopicA, 0), new PartitionRecord(TopicA, "a", a with { LeaderEpoch = 7 }, "leader-elected", 1));
            Log.Append(RecordTypes.Controller, "cluster", new ControllerRecord(1, "silo-1"));
        }

        /// <summary>A group's header and its members' records, as a group's first write of an activation logs them.</summary>
        public void AppendGroup(string groupId, params string[] members)
        {
            Log.Append(RecordTypes.Group, groupId, new GroupRecord(groupId, "reconciling", 1, 1, "uniform"));
            foreach (var member in members)
            {
                Log.Append(RecordTypes.GroupMember, RecordTypes.GroupMemberKey(groupId, member), new GroupMemberRecord(groupId, member,
                    new GroupMemberDescription(member, null, null, null, 1, "stable", ["a"], null, [new GroupTopicPartitions(TopicA, "a", [0])], [], [])));
            }
        }

        public Session Watch(WatchSelection selection, long? from)
        {
            var body = new GatedStream();
            var context = new DefaultHttpContext();
            context.Response.Body = body;
            var session = new WatchSession(context.Response, Hub, Log, selection, _options, NullLogger.Instance);
            var stop = new CancellationTokenSource();
            var run = Task.Run(() => session.RunAsync(from, stop.Token));
            _sessions.Add((session, run, stop));
            return new Session(body, run);
        }

        public async ValueTask DisposeAsync()
        {
            foreach (var (_, run, stop) in _sessions)
            {
                await stop.CancelAsync();
                try
                {
                    await run;
                }
                catch (OperationCanceledException)
                {
                }
            }

            await Images.StopAsync(CancellationToken.None);
            Images.Dispose();
        }
    }

    private sealed record Event(long? Id, string Name, JsonElement Data);

    private sealed class Session(GatedStream body, Task completion)
    {
        public GatedStream Body { get; } = body;

        public Task Completion { get; } = completion;

        /// <summary>The events received so far (keep-alive comments left out).</summary>
        public List<Event> Events
        {
            get
            {
                var events = new List<Event>();
                foreach (var block in Body.Text.Split("\n\n", StringSplitOptions.RemoveEmptyEntries))
                {
                    long? id = null;
                    string? name = null;
                    string? data = null;
                    foreach (var line in block.Split('\n'))
                    {
                        if (line.StartsWith("id: ", StringComparison.Ordinal))
                        {
                            id = long.Parse(line[4..], System.Globalization.CultureInfo.InvariantCulture);
                        }
                        else if (line.StartsWith("event: ", StringComparison.Ordinal))
                        {
                            name = line[7..];
                        }
                        else if (line.StartsWith("data: ", StringComparison.Ordinal))
                        {
                            data = line[6..];
                        }
                    }

                    if (name is not null && data is not null)
                    {
                        events.Add(new Event(id, name, JsonDocument.Parse(data).RootElement.Clone()));
                    }
                }

                return events;
            }
        }

        /// <summary>The highest offset a progress event reported.</summary>
        public long Progress => Events.Where(e => e.Name == "progress").Select(e => e.Id ?? 0).DefaultIfEmpty(0).Max();
    }

    /// <summary>A response body that keeps what is written, and can stop taking writes (a reader that does not read).</summary>
    private sealed class GatedStream : Stream
    {
        private readonly Lock _lock = new();
        private readonly MemoryStream _written = new();
        private TaskCompletionSource _open = NewOpen(true);
        private volatile bool _blocked;

        public string Text
        {
            get
            {
                lock (_lock)
                {
                    return Encoding.UTF8.GetString(_written.ToArray());
                }
            }
        }

        /// <summary>Whether a write is waiting for the reader.</summary>
        public bool Blocked => _blocked;

        public void Hold() => _open = NewOpen(false);

        public void Release() => _open.TrySetResult();

        public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            _blocked = !_open.Task.IsCompleted;
            await _open.Task.WaitAsync(cancellationToken);
            _blocked = false;
            lock (_lock)
            {
                _written.Write(buffer.Span);
            }
        }

        public override Task FlushAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        private static TaskCompletionSource NewOpen(bool open)
        {
            var source = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            if (open)
            {
                source.SetResult();
            }

            return source;
        }

        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => WriteAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();
    }

    /// <summary>A metadata log in memory whose prefix can be removed, as retention does.</summary>
    private sealed class MemoryLog : IMetadataLog
    {
        private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);
        private readonly Lock _lock = new();
        private readonly List<LoggedRecord> _records = [];
        private long _removedThrough;
        private TaskCompletionSource _appended = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public long Head
        {
            get
            {
                lock (_lock)
                {
                    return _records.Count;
                }
            }
        }

        public void Append<T>(string type, string key, T payload)
        {
            TaskCompletionSource appended;
            lock (_lock)
            {
                _records.Add(new LoggedRecord(_records.Count + 1, type, key, JsonSerializer.SerializeToUtf8Bytes(payload, Json), DateTimeOffset.UtcNow));
                appended = _appended;
                _appended = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            }

            appended.TrySetResult();
        }

        public void RemoveThrough(long offset)
        {
            lock (_lock)
            {
                _removedThrough = offset;
            }
        }

        public Task<IReadOnlyList<LoggedRecord>> ReadAsync(long afterOffset, int maxCount, CancellationToken cancellationToken)
        {
            lock (_lock)
            {
                var from = (int)Math.Max(afterOffset, _removedThrough);
                return Task.FromResult<IReadOnlyList<LoggedRecord>>([.. _records.Skip(from).Take(maxCount)]);
            }
        }

        public Task<long> GetHeadAsync(CancellationToken cancellationToken) => Task.FromResult(Head);

        public async Task WaitForAppendAsync(long afterOffset, TimeSpan maxWait, CancellationToken cancellationToken)
        {
            Task appended;
            lock (_lock)
            {
                if (_records.Count > afterOffset)
                {
                    return;
                }

                appended = _appended.Task;
            }

            await Task.WhenAny(appended, Task.Delay(maxWait, cancellationToken));
        }
    }
}

using OrleansMeta.Client;
using OrleansMeta.Contracts;

namespace OrleansMeta.Chaos;

/// <summary>What one watcher received, in the order delivered: records (offset, type, key) and the ends of snapshots
/// (a snapshot stands for the state at its offset, so the records after it go on from there).</summary>
public sealed class WatcherTrace(string name)
{
    private readonly Lock _lock = new();
    private readonly List<WatchedEvent> _events = [];

    /// <summary>The watcher's name, for reports.</summary>
    public string Name { get; } = name;

    /// <summary>Why the watch ended before it was stopped, if it did.</summary>
    public string? Error { get; set; }

    /// <summary>Everything delivered, in order.</summary>
    public IReadOnlyList<WatchedEvent> Events
    {
        get
        {
            lock (_lock)
            {
                return [.. _events];
            }
        }
    }

    /// <summary>How many records were delivered.</summary>
    public int RecordCount
    {
        get
        {
            lock (_lock)
            {
                return _events.Count(e => !e.IsSnapshot);
            }
        }
    }

    /// <summary>The offset of the last record or snapshot delivered; 0 for none.</summary>
    public long Reached
    {
        get
        {
            lock (_lock)
            {
                return _events.Count == 0 ? 0 : _events[^1].Offset;
            }
        }
    }

    /// <summary>Takes one event of the stream (records and snapshot ends; the rest says nothing about offsets).</summary>
    public void Add(WatchEvent change)
    {
        lock (_lock)
        {
            if (change.IsRecord)
            {
                _events.Add(new WatchedEvent(false, change.Offset, change.Type, change.Key));
            }
            else if (change.Kind == WatchEventKinds.SnapshotEnd)
            {
                _events.Add(new WatchedEvent(true, change.Offset, null, null));
            }
        }
    }

    /// <summary>A trace built by hand, for checker tests.</summary>
    public static WatcherTrace Of(string name, params WatchedEvent[] events)
    {
        var trace = new WatcherTrace(name);
        trace._events.AddRange(events);
        return trace;
    }
}

/// <summary>One delivered event: a record, or the end of a snapshot at <see cref="Offset"/>.</summary>
public sealed record WatchedEvent(bool IsSnapshot, long Offset, string? Type, string? Key)
{
    /// <summary>A record.</summary>
    public static WatchedEvent Record(long offset, string type, string key) => new(false, offset, type, key);

    /// <summary>The end of a snapshot at <paramref name="offset"/>.</summary>
    public static WatchedEvent Snapshot(long offset) => new(true, offset, null, null);
}

/// <summary>
/// Watchers attached for the whole run, each through its own client whose first silo differs, so that silo kills,
/// pauses and partitions cut some of them off and their SDK resumes on another silo.
/// </summary>
internal sealed class Watchers(IReadOnlyList<Uri> silos, int count)
{
    private readonly List<(WatcherTrace Trace, MetaClient Client, Task Run)> _running = [];
    private readonly CancellationTokenSource _stop = new();

    /// <summary>The traces, one per watcher.</summary>
    public IReadOnlyList<WatcherTrace> Traces => [.. _running.Select(r => r.Trace)];

    /// <summary>Starts every watcher from offset 1.</summary>
    public void Start()
    {
        for (var i = 0; i < count; i++)
        {
            var trace = new WatcherTrace($"watcher{i}");
            var client = new MetaClient(new MetaClientOptions
            {
                BootstrapUrls = [.. silos.Skip(i % silos.Count), .. silos.Take(i % silos.Count)],
                RequestTimeout = TimeSpan.FromSeconds(4),
            });
            _running.Add((trace, client, Task.Run(() => RunAsync(client, trace, _stop.Token))));
        }
    }

    /// <summary>Waits until every watcher has reached <paramref name="head"/> (or the time is up), then stops them.</summary>
    public async Task StopAtAsync(long head, TimeSpan within, CancellationToken cancellationToken)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(within);
        try
        {
            while (_running.Any(r => r.Trace.Reached < head))
            {
                await Task.Delay(100, deadline.Token);
            }
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            // The checker reports the watchers that did not get there.
        }

        await _stop.CancelAsync();
        foreach (var (_, client, run) in _running)
        {
            await run;
            client.Dispose();
        }

        _stop.Dispose();
    }

    private static async Task RunAsync(MetaClient client, WatcherTrace trace, CancellationToken stop)
    {
        try
        {
            await foreach (var change in client.WatchAsync(filter: null, fromOffset: 1, stop))
            {
                trace.Add(change);
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
        }
        catch (Exception e)
        {
            // The watch is meant to go on through every fault; the checker reports why it did not.
            trace.Error = $"{e.GetType().Name}: {e.Message}";
        }
    }
}

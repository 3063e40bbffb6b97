using System.Collections.Concurrent;
using System.Diagnostics.Tracing;

namespace OrleansMeta.Benchmarks;

/// <summary>
/// Which types a window allocated, from the runtime's own sampling: the GC raises an allocation tick about every
/// 100 KB allocated, naming the type of the object that crossed the mark, so over millions of allocations each type's
/// share of the ticks is its share of the bytes. Listens in this process (the benchmark hosts its silos).
/// </summary>
internal sealed class AllocationSampler : EventListener
{
    private const int AllocationTickEventId = 10;
    private const int GcStartEventId = 1;
    private const EventKeywords GcKeyword = (EventKeywords)0x1;
    private readonly ConcurrentDictionary<string, long> _bytesByType = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, int> _collections = new(StringComparer.Ordinal);
    // The runtime delivers its events to listeners a moment late, so the window is judged by each event's own time
    // stamp: collections made just before it (the benchmark's own full collections) must not count in it.
    private long _fromTicks = DateTime.MaxValue.Ticks;
    private long _toTicks = DateTime.MaxValue.Ticks;

    /// <summary>Starts a window; what earlier windows sampled is forgotten.</summary>
    public void Start()
    {
        _bytesByType.Clear();
        _collections.Clear();
        Interlocked.Exchange(ref _toTicks, DateTime.MaxValue.Ticks);
        Interlocked.Exchange(ref _fromTicks, DateTime.UtcNow.Ticks);
    }

    public void Stop() => Interlocked.Exchange(ref _toTicks, DateTime.UtcNow.Ticks);

    /// <summary>The <paramref name="count"/> types with the most sampled bytes, with their share of all sampled bytes.</summary>
    public IReadOnlyList<(string Type, double Share)> Top(int count)
    {
        var total = Math.Max(1, _bytesByType.Values.Sum());
        return [.. _bytesByType.OrderByDescending(p => p.Value).Take(count).Select(p => (p.Key, (double)p.Value / total))];
    }

    /// <summary>Collections started while recording, by generation and the runtime's reason (its GCStart event).</summary>
    public IReadOnlyList<(string Collection, int Count)> Collections()
        => [.. _collections.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => (p.Key, p.Value))];

    protected override void OnEventSourceCreated(EventSource source)
    {
        if (source.Name == "Microsoft-Windows-DotNETRuntime")
        {
            EnableEvents(source, EventLevel.Verbose, GcKeyword);
        }
    }

    protected override void OnEventWritten(EventWrittenEventArgs e)
    {
        var at = e.TimeStamp.ToUniversalTime().Ticks;
        if (at < Interlocked.Read(ref _fromTicks) || at > Interlocked.Read(ref _toTicks) || e.Payload is null || e.PayloadNames is null)
        {
            return;
        }

        if (e.EventId == GcStartEventId)
        {
            var depth = e.PayloadNames.IndexOf("Depth") is var d and >= 0 ? e.Payload[d] : "?";
            var reason = e.PayloadNames.IndexOf("Reason") is var r and >= 0 ? ReasonName(Convert.ToInt32(e.Payload[r], System.Globalization.CultureInfo.InvariantCulture)) : "?";
            _collections.AddOrUpdate($"gen{depth} {reason}", 1, (_, n) => n + 1);
            return;
        }

        if (e.EventId != AllocationTickEventId)
        {
            return;
        }

        var type = e.PayloadNames.IndexOf("TypeName") is var t and >= 0 ? e.Payload[t] as string ?? "?" : "?";
        var amount = e.PayloadNames.IndexOf("AllocationAmount64") is var a and >= 0 ? Convert.ToInt64(e.Payload[a], System.Globalization.CultureInfo.InvariantCulture) : 100_000;
        _bytesByType.AddOrUpdate(type, amount, (_, sum) => sum + amount);
    }

    /// <summary>The runtime's GC reasons (GCStart's Reason field) that a failover can meet.</summary>
    private static string ReasonName(int reason) => reason switch
    {
        0 => "small-object budget",
        1 => "induced",
        2 => "low memory",
        3 => "empty",
        4 => "large-object budget",
        5 => "out of small-object space",
        6 => "out of large-object space",
        7 => "induced, not forced",
        8 => "internal",
        9 => "induced, low memory",
        10 => "induced, compacting",
        _ => $"reason {reason}",
    };
}

using System.Collections.Concurrent;
using System.Threading.Channels;
using Microsoft.Extensions.Options;
using OrleansMeta.Grains.Groups;
using OrleansMeta.Runtime.Cluster;

namespace OrleansMeta.Silo.Api;

/// <summary>How log-offsets reports are passed on to the other silos (<c>Meta:LogOffsets</c>).</summary>
public sealed class LogOffsetsFanOutOptions
{
    public const string SectionName = "Meta:LogOffsets";

    /// <summary>How long one batch to one silo may take before it is given up (the next reports carry newer values).</summary>
    public TimeSpan PeerTimeout { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>Partitions per request to a silo.</summary>
    public int MaxBatchSize { get; set; } = 10_000;

    /// <summary>Partitions waiting for one silo at most; past it the oldest waiting partition is dropped.</summary>
    public int MaxPendingPerPeer { get; set; } = 1_000_000;

    /// <summary>Checked when the silo starts, so a bad setting never fails a broker's report.</summary>
    public bool IsValid => PeerTimeout > TimeSpan.Zero && MaxBatchSize > 0 && MaxPendingPerPeer > 0;

    public const string ValidationMessage =
        "Meta:LogOffsets: PeerTimeout must be a positive time (default 00:00:02), MaxBatchSize and MaxPendingPerPeer 1 or more (defaults 10000 and 1000000).";
}

/// <summary>What one silo's sender has done, for tests and diagnostics.</summary>
/// <param name="Pending">Partitions waiting to be sent.</param>
/// <param name="InFlight">Partitions in the request under way, if any.</param>
/// <param name="SentBatches">Requests the silo answered with success.</param>
/// <param name="FailedBatches">Requests that failed or timed out (their partitions are dropped).</param>
/// <param name="Dropped">Partitions dropped unsent because too many were waiting.</param>
public readonly record struct LogOffsetsPeerStatistics(int Pending, int InFlight, long SentBatches, long FailedBatches, long Dropped);

/// <summary>
/// Passes log-offsets reports applied on this silo to every other active silo, in the background: a report's request
/// only hands its entries over (<see cref="Enqueue"/>, which never blocks on a peer and never throws), so a slow or
/// dead silo costs the reporting broker nothing.
/// </summary>
/// <remarks>
/// One sender per peer silo, each with its own pending set keyed by partition: a partition reported again before it
/// was sent is sent once, with the value <see cref="LogOffsetsTable"/> would keep (the higher leader epoch; of equal
/// epochs, the later report). So a peer that is slow gets fewer, larger batches of the latest values rather than a
/// queue of every report, and memory is bounded by the number of partitions (and by
/// <see cref="LogOffsetsFanOutOptions.MaxPendingPerPeer"/>, past which the oldest waiting partition is dropped). A
/// batch that fails is dropped, not retried: the leader reports again every few seconds. Senders of silos that left the
/// active view are closed; a silo not in the view is never sent to.
/// </remarks>
public sealed partial class LogOffsetsFanOut : IAsyncDisposable, IDisposable
{
    private readonly IClusterMembership _membership;
    private readonly SiloHttpClient _http;
    private readonly LogOffsetsFanOutOptions _options;
    private readonly ILogger<LogOffsetsFanOut> _logger;
    private readonly ConcurrentDictionary<SiloAddress, PeerSender> _peers = new();
    private readonly CancellationTokenSource _stopping = new();

    public LogOffsetsFanOut(IClusterMembership membership, SiloHttpClient http, IOptions<LogOffsetsFanOutOptions> options, ILogger<LogOffsetsFanOut> logger)
    {
        _membership = membership;
        _http = http;
        _options = options.Value;
        _logger = logger;
    }

    /// <summary>Hands <paramref name="entries"/> (already applied here) to the sender of every other active silo and
    /// returns at once. Never throws: passing reports on is best effort.</summary>
    public void Enqueue(IReadOnlyList<LogOffsetsEntry> entries)
    {
        try
        {
            if (entries.Count == 0 || _stopping.IsCancellationRequested)
            {
                return;
            }

            var self = _membership.Self;
            var active = _membership.CurrentView.ActiveSilos;
            foreach (var silo in active)
            {
                if (silo != self)
                {
                    _peers.GetOrAdd(silo, static (silo, fanOut) => new PeerSender(fanOut, silo), this).Add(entries);
                }
            }

            foreach (var (silo, sender) in _peers)
            {
                if (!active.Contains(silo) && _peers.TryRemove(new KeyValuePair<SiloAddress, PeerSender>(silo, sender)))
                {
                    sender.Close();
                }
            }
        }
#pragma warning disable CA1031 // A report's request must not fail because passing it on did.
        catch (Exception exception)
#pragma warning restore CA1031
        {
            LogEnqueueFailed(_logger, exception);
        }
    }

    /// <summary>The sender of <paramref name="silo"/>, if this silo has passed it anything since it joined the view.</summary>
    public LogOffsetsPeerStatistics? StatisticsOf(SiloAddress silo) => _peers.TryGetValue(silo, out var sender) ? sender.Statistics : null;

    public async ValueTask DisposeAsync()
    {
        if (_stopping.IsCancellationRequested)
        {
            return;
        }

        await _stopping.CancelAsync().ConfigureAwait(false);
        var loops = new List<Task>();
        foreach (var sender in _peers.Values)
        {
            sender.Close();
            loops.Add(sender.Loop);
        }

        await Task.WhenAll(loops).ConfigureAwait(false);
        _stopping.Dispose();
    }

    /// <summary>Stops every sender without waiting for a batch under way (it is cancelled).</summary>
    public void Dispose()
    {
        if (_stopping.IsCancellationRequested)
        {
            return;
        }

        _stopping.Cancel();
        foreach (var sender in _peers.Values)
        {
            sender.Close();
        }
    }

    private bool IsActive(SiloAddress silo) => _membership.CurrentView.ActiveSilos.Contains(silo);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Passing a log-offsets report on to the other silos failed")]
    private static partial void LogEnqueueFailed(ILogger logger, Exception exception);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Log offsets of {Count} partitions were not passed on to silo {Silo}; its next batch carries newer ones")]
    private static partial void LogBatchFailed(ILogger logger, int count, SiloAddress silo, Exception exception);

    private sealed class PeerSender(LogOffsetsFanOut fanOut, SiloAddress silo)
    {
        private readonly Lock _lock = new();

        // Waiting partitions, oldest first, and where each one is in that order.
        private readonly LinkedList<LogOffsetsEntry> _order = new();
        private readonly Dictionary<(Guid TopicId, int Partition), LinkedListNode<LogOffsetsEntry>> _index = new();

        // Wakes the loop; one pending wake-up is enough, since the loop drains everything it finds.
        private readonly Channel<bool> _wake = Channel.CreateBounded<bool>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite });
        private int _started;
        private bool _closed;
        private int _inFlight;
        private long _sent, _failed, _dropped;

        public Task Loop { get; private set; } = Task.CompletedTask;

        public LogOffsetsPeerStatistics Statistics
        {
            get
            {
                lock (_lock)
                {
                    return new LogOffsetsPeerStatistics(_index.Count, _inFlight, _sent, _failed, _dropped);
                }
            }
        }

        public void Add(IReadOnlyList<LogOffsetsEntry> entries)
        {
            lock (_lock)
            {
                if (_closed)
                {
                    return;
                }

                var max = fanOut._options.MaxPendingPerPeer;
                foreach (var entry in entries)
                {
                    var key = (entry.TopicId, entry.Partition);
                    if (_index.TryGetValue(key, out var waiting))
                    {
                        // As LogOffsetsTable orders them: an older leader epoch never replaces a newer one.
                        if (entry.Offsets.LeaderEpoch >= waiting.Value.Offsets.LeaderEpoch)
                        {
                            waiting.Value = entry;
                        }

                        continue;
                    }

                    if (_index.Count >= max)
                    {
                        var oldest = _order.First!;
                        _order.RemoveFirst();
                        _index.Remove((oldest.Value.TopicId, oldest.Value.Partition));
                        _dropped++;
                    }

                    _index[key] = _order.AddLast(entry);
                }

                if (_started == 0)
                {
                    _started = 1;
                    Loop = Task.Run(RunAsync);
                }
            }

            _wake.Writer.TryWrite(true);
        }

        public void Close()
        {
            lock (_lock)
            {
                _closed = true;
                _order.Clear();
                _index.Clear();
            }

            _wake.Writer.TryComplete();
        }

        private async Task RunAsync()
        {
            var stopping = fanOut._stopping.Token;
            try
            {
                while (await _wake.Reader.WaitToReadAsync(stopping).ConfigureAwait(false))
                {
                    _wake.Reader.TryRead(out _);
                    while (Take() is { Length: > 0 } batch)
                    {
                        if (!fanOut.IsActive(silo))
                        {
                            // Left the view (a silo's address is never active again once it left): nothing more goes to it.
                            fanOut._peers.TryRemove(new KeyValuePair<SiloAddress, PeerSender>(silo, this));
                            Close();
                            lock (_lock)
                            {
                                _inFlight = 0;
                            }

                            return;
                        }

                        await SendAsync(batch, stopping).ConfigureAwait(false);
                    }
                }
            }
            catch (OperationCanceledException) when (stopping.IsCancellationRequested)
            {
                // The silo is stopping.
            }
        }

        private LogOffsetsEntry[] Take()
        {
            lock (_lock)
            {
                var count = Math.Min(_index.Count, fanOut._options.MaxBatchSize);
                var batch = new LogOffsetsEntry[count];
                for (var i = 0; i < count; i++)
                {
                    var node = _order.First!;
                    _order.RemoveFirst();
                    _index.Remove((node.Value.TopicId, node.Value.Partition));
                    batch[i] = node.Value;
                }

                _inFlight = count;
                return batch;
            }
        }

        private async Task SendAsync(LogOffsetsEntry[] batch, CancellationToken stopping)
        {
            var ok = false;
            try
            {
                using var deadline = CancellationTokenSource.CreateLinkedTokenSource(stopping);
                deadline.CancelAfter(fanOut._options.PeerTimeout);
                using var message = new HttpRequestMessage(HttpMethod.Post, SiloEndpoints.Prefix + LogOffsetsEndpoints.PeerPath)
                {
                    Content = JsonContent.Create(batch, options: SiloPeers.Json),
                };
                using var response = await fanOut._http.SendAsync(silo, message, fanOut._membership.Self, deadline.Token).ConfigureAwait(false);
                response.EnsureSuccessStatusCode();
                ok = true;
            }
#pragma warning disable CA1031 // Whatever went wrong with one batch, the sender goes on with the next.
            catch (Exception exception) when (!stopping.IsCancellationRequested)
#pragma warning restore CA1031
            {
                LogBatchFailed(fanOut._logger, batch.Length, silo, exception);
            }
            finally
            {
                lock (_lock)
                {
                    _inFlight = 0;
                    if (ok)
                    {
                        _sent++;
                    }
                    else
                    {
                        _failed++;
                    }
                }
            }
        }
    }
}

using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using OrleansMeta.Contracts;
using OrleansMeta.GrainInterfaces;
using OrleansMeta.Grains.Metadata;
using OrleansMeta.Runtime;
using OrleansMeta.Runtime.Cluster;
using OrleansMeta.Runtime.Persistence;
using OrleansMeta.Runtime.Placement;

namespace OrleansMeta.Grains;

public sealed class ControllerEpochState
{
    public long Epoch { get; set; }

    public string Silo { get; set; } = "";
}

/// <summary>
/// The cluster's controller. Each activation takes a new epoch (a versioned write whose version is the epoch); every
/// partition decision it sends is fenced by that epoch, so a controller that lost its place can never overwrite a newer
/// one's decisions. Work is level-triggered: besides reacting to broker changes it periodically reconciles every
/// partition with broker liveness, so whatever a crashed controller left half-done is finished by the next.
/// Every decision (reconcile, rebalance, broker change, election) is taken on an image at least as new as the log head
/// read after the epoch write: a controller on a silo whose image still replays the log must not judge liveness or ISRs
/// from the past. Periodic work never waits on a grain that may be waiting on the controller (broker pings are sent
/// without waiting), and a failure in one partition or one ping never costs the rest of a round.
/// </summary>
internal sealed partial class ControllerGrain(
    [PersistentState(ControllerGrain.EpochStateName)] IPersistentState<ControllerEpochState> epoch,
    MetadataImageService image,
    IMetadataLog log,
    IClusterMembership membership,
    GrainLocator locator,
    IOptions<ControllerOptions> options,
    ILogger<ControllerGrain> logger) : Grain, IControllerGrain
{
    public const string EpochStateName = "epoch";

    /// <summary>Partitions per batch call: two of the storage's write batches.</summary>
    private const int BatchSize = 1024;

    /// <summary>Batches in flight per silo: 4096 partition commands at once on each, which the storage writes in few transactions.</summary>
    private const int BatchesPerSilo = 4;

    private readonly ControllerOptions _options = options.Value;
    private bool _stale;

    /// <summary>The log head read after this controller took its epoch: no decision is taken on an older image.</summary>
    private long _decideFrom = long.MaxValue;

    public override async Task OnActivateAsync(CancellationToken cancellationToken)
    {
        var previous = (epoch.State.Epoch, epoch.State.Silo);
        epoch.State.Epoch = epoch.Version + 1;
        epoch.State.Silo = membership.Self?.ToString() ?? "";
        long? written;
        try
        {
            written = await epoch.WriteStateAsync([Records.Controller(new ControllerRecord(epoch.State.Epoch, epoch.State.Silo))], null, cancellationToken);
        }
        catch
        {
            (epoch.State.Epoch, epoch.State.Silo) = previous;
            throw;
        }

        // The epoch record's offset is a lower bound; whatever else committed before the epoch was taken is below the head.
        _decideFrom = Math.Max(written ?? 0, await log.GetHeadAsync(cancellationToken));
        LogTookOver(logger, epoch.Version, epoch.State.Silo, _decideFrom);
        RegisterGrainTimer(ReconcileAllAsync, TimeSpan.Zero, _options.ReconcileInterval);
        if (_options.AutoLeaderRebalance)
        {
            RegisterGrainTimer(RebalanceAsync, _options.LeaderImbalanceCheckInterval, _options.LeaderImbalanceCheckInterval);
        }
    }

    private long Epoch => epoch.Version;

    public Task<ControllerStatus> GetStatusAsync() => Task.FromResult(new ControllerStatus(Epoch, epoch.State.Silo));

    public async Task BrokerChangedAsync(int brokerId, long offset)
    {
        var metadata = await ImageAsync(offset);
        if (metadata.Brokers.TryGetValue(brokerId, out var broker) && broker.IsShuttingDown)
        {
            // Controlled shutdown: leadership moves to another active in-sync replica and the broker leaves the ISRs it
            // shares; the broker's heartbeats read the outcome from the image.
            var affected = Partitions(metadata).Where(p => p.State.Leader == brokerId || (p.State.Isr.Contains(brokerId) && p.State.Isr.Count > 1));
            await SendAsync(metadata, affected, PartitionCommandKind.MoveLeadershipAway, brokerId);
            return;
        }

        // Leadership first: partitions the broker led (or could now lead) are unavailable until re-elected; those where
        // it only follows just need their ISR trimmed, which can wait a moment.
        var leadership = Partitions(metadata).Where(p =>
            p.State.Leader == brokerId || (p.State.Leader == PartitionState.NoLeader && p.State.Replicas.Contains(brokerId))).ToList();
        await SendAsync(metadata, leadership, PartitionCommandKind.Reconcile, broker: null);
        var following = Partitions(metadata).Where(p => p.State.Leader != brokerId && p.State.Leader != PartitionState.NoLeader && p.State.Isr.Contains(brokerId));
        await SendAsync(metadata, following, PartitionCommandKind.Reconcile, broker: null);
    }

    public async Task<IReadOnlyList<PartitionChange>> ElectAsync(PartitionCommandKind kind, IReadOnlyList<PartitionRef>? partitions, long knownOffset)
    {
        if (kind is not (PartitionCommandKind.Preferred or PartitionCommandKind.Unclean))
        {
            throw MetaException.Invalid(ErrorCodes.InvalidRequest, "Elections are preferred or unclean.");
        }

        var metadata = await ImageAsync(knownOffset);
        var results = new List<PartitionChange>();
        var targets = new List<(TopicImage Topic, PartitionState State)>();
        if (partitions is null)
        {
            if (kind == PartitionCommandKind.Unclean)
            {
                throw MetaException.Invalid(ErrorCodes.InvalidRequest, "An unclean election must name its partitions: it may lose data.");
            }

            targets.AddRange(Partitions(metadata).Where(p => p.State.Leader != p.State.Replicas[0]));
        }
        else
        {
            foreach (var reference in partitions)
            {
                if (metadata.Topics.TryGetValue(reference.Topic, out var topic) && reference.Partition >= 0 && reference.Partition < topic.Partitions.Length)
                {
                    targets.Add((topic, topic.Partitions[reference.Partition]));
                }
                else
                {
                    results.Add(new PartitionChange(reference.Topic, Guid.Empty,
                        new PartitionState(reference.Partition, [], [], PartitionState.NoLeader, -1, -1), null,
                        ErrorCodes.UnknownTopicOrPartition, $"Topic '{reference.Topic}' has no partition {reference.Partition}."));
                }
            }
        }

        results.AddRange(await SendAsync(metadata, targets, kind, broker: null));
        return results;
    }

    private async Task ReconcileAllAsync(CancellationToken cancellationToken)
    {
        if (_stale || await TickImageAsync() is not { } metadata)
        {
            return;
        }

        // Activate broker grains so that the session of a broker whose grain was lost with a silo keeps being watched.
        // Not awaited: a broker grain may be busy (or waiting on this controller), and a ping that fails costs nothing.
        foreach (var broker in metadata.Brokers.Values.Where(b => !b.IsFenced))
        {
            var id = broker.Record.BrokerId;
            _ = GrainFactory.GetGrain<IBrokerGrain>(id.ToString(System.Globalization.CultureInfo.InvariantCulture)).PingAsync().ContinueWith(
                t => LogPingFailed(logger, id, t.Exception!.GetBaseException().Message),
                CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
        }

        var live = metadata.LiveBrokers.Select(b => b.Record.BrokerId).ToHashSet();
        var needy = Partitions(metadata).Where(p =>
            p.State.Isr.Any(b => !live.Contains(b)) && p.State.Isr.Count(live.Contains) > 0
            || (p.State.Leader != PartitionState.NoLeader && !live.Contains(p.State.Leader))
            || (p.State.Leader == PartitionState.NoLeader
                && (p.State.Isr.Any(live.Contains) || (TopicRules.AllowsUncleanElection(p.Topic.Topic) && p.State.Replicas.Any(live.Contains)))));
        await SendAsync(metadata, needy, PartitionCommandKind.Reconcile, broker: null);

        // Controlled shutdowns whose moves failed (or whose notification was lost) are finished here.
        foreach (var leaving in metadata.Brokers.Values.Where(b => b.IsShuttingDown).Select(b => b.Record.BrokerId).ToList())
        {
            bool Active(int b) => b != leaving && metadata.Brokers.TryGetValue(b, out var other) && other.IsActive;
            var movable = Partitions(metadata).Where(p => p.State.Leader == leaving && p.State.Isr.Any(Active));
            await SendAsync(metadata, movable, PartitionCommandKind.MoveLeadershipAway, leaving);
        }
    }

    private async Task RebalanceAsync(CancellationToken cancellationToken)
    {
        if (_stale || await TickImageAsync() is not { } metadata)
        {
            return;
        }

        var partitions = Partitions(metadata).ToList();
        var imbalanced = new HashSet<int>();
        foreach (var group in partitions.GroupBy(p => p.State.Replicas[0]))
        {
            var notLed = group.Count(p => p.State.Leader != group.Key);
            if (notLed * 100 > _options.LeaderImbalancePercentage * group.Count())
            {
                imbalanced.Add(group.Key);
            }
        }

        var live = metadata.Brokers.Values.Where(b => b.IsActive).Select(b => b.Record.BrokerId).ToHashSet();
        var candidates = partitions.Where(p => imbalanced.Contains(p.State.Replicas[0]) && p.State.Leader != p.State.Replicas[0]
            && live.Contains(p.State.Replicas[0]) && p.State.Isr.Contains(p.State.Replicas[0])).ToList();
        if (candidates.Count > 0)
        {
            LogRebalancing(logger, candidates.Count);
            await SendAsync(metadata, candidates, PartitionCommandKind.Preferred, broker: null);
        }
    }

    /// <summary>This silo's image once it holds <paramref name="offset"/> and the head read when the epoch was taken.</summary>
    private Task<MetadataImage> ImageAsync(long offset) => image.WaitForAsync(Math.Max(offset, _decideFrom), _options.ImageWaitTimeout);

    /// <summary>The image for a periodic round, or null (the round is skipped and the next one tries again) while this
    /// silo's image has not reached the head read when the epoch was taken.</summary>
    private async Task<MetadataImage?> TickImageAsync()
    {
        try
        {
            return await ImageAsync(0);
        }
        catch (MetaException exception) when (exception.Code == ErrorCodes.OffsetNotAvailable)
        {
            LogImageBehind(logger, image.Current.Offset, _decideFrom);
            return null;
        }
    }

    private static IEnumerable<(TopicImage Topic, PartitionState State)> Partitions(MetadataImage metadata)
        => metadata.Topics.Values.SelectMany(t => t.Partitions.Select(p => (t, p)));

    /// <summary>
    /// Sends the command to every partition and returns each partition's outcome. Partitions are grouped by the silo
    /// that owns them and sent in batches, one call per batch to a relay on that silo (<see cref="IPartitionBatchGrain"/>),
    /// so a failover costs a few calls per silo rather than one per partition. Partitions of topics that allow unclean
    /// election travel in batches of their own (the command carries the rule); each such stream of a silo has
    /// <see cref="BatchesPerSilo"/> batches in flight, and silos are served side by side. Once a partition reports that
    /// a newer controller exists, no further batch is sent.
    /// </summary>
    private async Task<List<PartitionChange>> SendAsync(
        MetadataImage metadata, IEnumerable<(TopicImage Topic, PartitionState State)> partitions, PartitionCommandKind kind, int? broker)
    {
        var live = metadata.LiveBrokers.Select(b => b.Record.BrokerId).ToArray();
        var shuttingDown = metadata.Brokers.Values.Where(b => b.IsShuttingDown).Select(b => b.Record.BrokerId).ToArray();
        var streams = new Dictionary<(SiloAddress? Owner, bool AllowUnclean), List<string>>();
        foreach (var p in partitions)
        {
            var key = PartitionKeys.For(p.Topic.Topic.TopicId, p.State.Partition);
            var stream = (locator.Locate<IPartitionGrain>(key).Owner?.Address, TopicRules.AllowsUncleanElection(p.Topic.Topic));
            if (!streams.TryGetValue(stream, out var keys))
            {
                streams[stream] = keys = [];
            }

            keys.Add(key);
        }

        var outcome = new BatchOutcome();
        await Task.WhenAll(streams.Select(s => SendToSiloAsync(
            s.Key.Owner, new PartitionCommand(kind, Epoch, live, shuttingDown, s.Key.AllowUnclean, broker, metadata.Offset), s.Value, outcome)));
        if (outcome.Fenced is { } fenced)
        {
            // A newer controller exists: stop deciding and make room for it.
            _stale = true;
            LogFenced(logger, Epoch);
            DeactivateOnIdle();
            throw new MetaException(ErrorCodes.NotController, fenced.Message, 503, retryable: true);
        }

        if (outcome.Failures.Count > 0)
        {
            // Some partitions failed (e.g. a silo went away mid-call); the next reconcile retries them.
            var first = outcome.Failures[0];
            LogPartialFailure(logger, outcome.Failures.Count, streams.Values.Sum(k => k.Count), first.Partition, first.ErrorCode, first.Message);
        }

        return outcome.Changes;
    }

    /// <summary>The batches of one silo, <see cref="BatchesPerSilo"/> at a time.</summary>
    private async Task SendToSiloAsync(SiloAddress? owner, PartitionCommand command, List<string> keys, BatchOutcome outcome)
    {
        // Pinned to the owning silo; with no owner (no active silo) any key will do: the relay then calls its partitions
        // remotely, which is slower but as correct.
        var relay = GrainFactory.GetGrain<IPartitionBatchGrain>(owner is null ? "any" : RendezvousPlacement.PinnedTo(owner));
        using var window = new SemaphoreSlim(BatchesPerSilo);
        var batches = new List<Task>();
        foreach (var batch in keys.Chunk(BatchSize))
        {
            await window.WaitAsync();
            if (outcome.Fenced is not null)
            {
                break;
            }

            batches.Add(SendBatchAsync(relay, new PartitionBatch(command, batch), outcome, window));
        }

        await Task.WhenAll(batches);
    }

    private static async Task SendBatchAsync(IPartitionBatchGrain relay, PartitionBatch batch, BatchOutcome outcome, SemaphoreSlim window)
    {
        try
        {
            var result = await relay.ApplyAsync(batch);
            outcome.Changes.AddRange(result.Changes);
            outcome.Failures.AddRange(result.Failures);
            outcome.Fenced ??= result.Failures.FirstOrDefault(f => f.ErrorCode == ErrorCodes.NotController);
        }
        catch (Exception exception)
        {
            // The relay's silo went away or the call timed out: whatever its partitions did, the next reconcile sees.
            outcome.Failures.AddRange(batch.Partitions.Select(p => new PartitionFailure(p, ErrorCodes.Unavailable, exception.Message)));
        }
        finally
        {
            window.Release();
        }
    }

    /// <summary>What the batches of one command did. Only touched on this activation's turn, one continuation at a time.</summary>
    private sealed class BatchOutcome
    {
        public List<PartitionChange> Changes { get; } = [];

        public List<PartitionFailure> Failures { get; } = [];

        /// <summary>The first partition that found a newer controller epoch.</summary>
        public PartitionFailure? Fenced { get; set; }
    }

    [LoggerMessage(2200, LogLevel.Information, "Controller epoch {Epoch} took over on {Silo}; it decides on images from offset {Offset}")]
    private static partial void LogTookOver(ILogger logger, long epoch, string silo, long offset);

    [LoggerMessage(2201, LogLevel.Warning, "Controller epoch {Epoch} was fenced by a newer controller; deactivating")]
    private static partial void LogFenced(ILogger logger, long epoch);

    [LoggerMessage(2202, LogLevel.Warning, "{Failed} of {Total} partition commands failed (the first, {Partition}: {Code} {Reason}); the next reconcile retries them")]
    private static partial void LogPartialFailure(ILogger logger, int failed, int total, string partition, string code, string reason);

    [LoggerMessage(2203, LogLevel.Information, "Leadership is imbalanced; running preferred elections for {Count} partitions")]
    private static partial void LogRebalancing(ILogger logger, int count);

    [LoggerMessage(2204, LogLevel.Debug, "Pinging broker {BrokerId} failed: {Reason}; the next round pings it again")]
    private static partial void LogPingFailed(ILogger logger, int brokerId, string reason);

    [LoggerMessage(2205, LogLevel.Warning, "This silo's metadata image is at offset {Offset}, behind the head {Head} read when the controller took over; skipping this round")]
    private static partial void LogImageBehind(ILogger logger, long offset, long head);
}

using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using OrleansMeta.Contracts;
using OrleansMeta.GrainInterfaces;
using OrleansMeta.Grains.Metadata;
using OrleansMeta.Runtime;
using OrleansMeta.Runtime.Persistence;

namespace OrleansMeta.Grains;

public sealed class BrokerGrainState
{
    public BrokerRecord? Current { get; set; }
}

/// <summary>
/// One broker's registration and session. Heartbeats only touch memory; registration, unfencing, controlled shutdown,
/// session expiry and unregistration are written (with their metadata records). A new activation (after a silo failure)
/// gives the broker a full session to heartbeat again before fencing it.
/// </summary>
/// <remarks>
/// The broker epoch is the log offset of the incarnation's <c>registered</c> record (as in Kafka), so epochs grow and no
/// two brokers ever share one. The offset exists only once the record is committed, so the stored record says 0
/// ("this record's own offset"); the activation that wrote it learns the offset from the write, and any later activation
/// derives it from an image that has reached the log head (the row and its record commit together, so the record is
/// there). The next transition stores the epoch in the row as well. This keeps registration at one write, and memory
/// never holds an epoch that was not committed.
/// Heartbeats never wait on the controller: controlled shutdown is driven by the controller (told when the broker enters
/// it) and the heartbeat only reads the outcome from the image, so no cycle can form with the controller's periodic work.
/// </remarks>
[KeepsTruthInMemory]
internal sealed partial class BrokerGrain(
    [PersistentState(BrokerGrain.StateName)] IPersistentState<BrokerGrainState> state,
    MetadataImageService image,
    IMetadataLog log,
    IOptions<BrokerOptions> options,
    IOptions<ControllerOptions> controllerOptions,
    ILogger<BrokerGrain> logger) : Grain, IBrokerGrain
{
    /// <summary>The state row that AlterPartition is fenced on (see <see cref="BrokerRecord.StateVersion"/>).</summary>
    public const string StateName = "broker";

    private readonly TimeSpan _session = options.Value.SessionTimeout;
    private readonly TimeSpan _imageWait = controllerOptions.Value.ImageWaitTimeout;
    private long _lastHeartbeat;
    private int _heartbeatsInProgress;
    private long _controlledShutdownOffset;
    private long _lastWrittenOffset;
    private IDisposable? _sessionTimer;

    private int BrokerId => int.Parse(Key, System.Globalization.CultureInfo.InvariantCulture);

    public static GrainId GrainIdFor(int brokerId) => new("broker", brokerId.ToString(System.Globalization.CultureInfo.InvariantCulture));

    public override async Task OnActivateAsync(CancellationToken cancellationToken)
    {
        if (state.State.Current is { BrokerEpoch: 0 } pending)
        {
            // Registered, but no later transition stored the epoch yet: it is the registration record's offset.
            var head = await log.GetHeadAsync(cancellationToken);
            var metadata = await image.WaitForAsync(head, _imageWait, cancellationToken);
            if (!metadata.Brokers.TryGetValue(BrokerId, out var known) || known.Record.IncarnationId != pending.IncarnationId)
            {
                throw new InvalidOperationException(
                    $"Broker {BrokerId}'s stored registration (incarnation {pending.IncarnationId}) is not in the metadata log up to offset {head}.");
            }

            state.State.Current = pending with { BrokerEpoch = known.RegistrationOffset, RegistrationOffset = known.RegistrationOffset };
        }

        _lastHeartbeat = TimeProvider.GetTimestamp();
        _sessionTimer = RegisterGrainTimer(_ => CheckSessionAsync(), options.Value.SessionCheckInterval, options.Value.SessionCheckInterval);
    }

    public async Task<BrokerRegistration> RegisterAsync(RegisterBroker registration)
    {
        ValidateRegistration(registration);
        var current = state.State.Current;
        if (current is not null && current.IncarnationId == registration.IncarnationId && current.Change != BrokerChanges.ShutDown)
        {
            // The same process asking again (its answer was lost): same epoch.
            _lastHeartbeat = TimeProvider.GetTimestamp();
            return new BrokerRegistration(BrokerId, current.BrokerEpoch, current.RegistrationOffset);
        }

        if (current is not null && current.State != BrokerStates.Fenced && SessionAlive)
        {
            throw MetaException.Conflict(ErrorCodes.DuplicateBrokerRegistration,
                $"Broker {BrokerId} is registered by incarnation {current.IncarnationId}, whose session is alive (last heartbeat " +
                $"{TimeProvider.GetElapsedTime(_lastHeartbeat).TotalSeconds:0.0} s ago; session {_session.TotalSeconds:0.#} s). " +
                "Stop the other process, or wait for its session to expire.");
        }

        // Epoch 0 in the stored record: "the offset of this record" (see the remarks above).
        var record = new BrokerRecord(BrokerId, registration.IncarnationId, 0, registration.Listeners, registration.Rack,
            BrokerStates.Fenced, 0, BrokerChanges.Registered, state.Version + 1);
        var offset = await WriteAsync(record);
        var registered = record with { BrokerEpoch = offset, RegistrationOffset = offset };
        state.State.Current = registered;
        _lastHeartbeat = TimeProvider.GetTimestamp();
        LogRegistered(logger, BrokerId, offset);
        return new BrokerRegistration(BrokerId, registered.BrokerEpoch, offset);
    }

    public async Task<BrokerHeartbeatResult> HeartbeatAsync(BrokerHeartbeat heartbeat)
    {
        var current = state.State.Current
            ?? throw MetaException.NotFound(ErrorCodes.BrokerIdNotRegistered, $"Broker {BrokerId} is not registered; register it first.");
        if (heartbeat.BrokerEpoch != current.BrokerEpoch)
        {
            throw MetaException.Conflict(ErrorCodes.StaleBrokerEpoch,
                $"Broker epoch {heartbeat.BrokerEpoch} is not the current epoch {current.BrokerEpoch} of broker {BrokerId}; this process was replaced. Register again.");
        }

        // The session counts from the start of the call and the session check leaves a broker alone while one of its
        // heartbeats is being answered, however long the answer takes.
        _lastHeartbeat = TimeProvider.GetTimestamp();
        _heartbeatsInProgress++;
        try
        {
            var caughtUp = heartbeat.CurrentMetadataOffset >= current.RegistrationOffset;
            if (current.Change == BrokerChanges.ShutDown)
            {
                // Told to stop: this incarnation stays fenced whatever it sends; a restart registers a new one.
                return new BrokerHeartbeatResult(true, caughtUp, true, KnownOffset);
            }

            if (current.State == BrokerStates.Fenced && caughtUp && !heartbeat.WantShutDown)
            {
                current = await TransitionAsync(current, BrokerStates.Unfenced, BrokerChanges.Unfenced);
            }
            else if (heartbeat.WantShutDown && current.State == BrokerStates.Unfenced)
            {
                current = await TransitionAsync(current, BrokerStates.ControlledShutdown, BrokerChanges.ControlledShutdown);
            }

            // Once in controlled shutdown a broker cannot leave it (as in Kafka): every heartbeat, whatever it asks,
            // moves the shutdown on, so a process that keeps heartbeating cannot hold the broker id in it forever.
            var shouldShutDown = false;
            if (heartbeat.WantShutDown && current.State == BrokerStates.Fenced)
            {
                // A fenced broker leads nothing; it is told to stop and stays fenced for good.
                current = await TransitionAsync(current, BrokerStates.Fenced, BrokerChanges.ShutDown);
                shouldShutDown = true;
            }
            else if (current.State == BrokerStates.ControlledShutdown && await LeadsNothingMovableAsync(current))
            {
                // As Kafka does: fenced the moment it is told to stop, so a restart registers at once.
                current = await TransitionAsync(current, BrokerStates.Fenced, BrokerChanges.ShutDown);
                shouldShutDown = true;
            }

            return new BrokerHeartbeatResult(current.State == BrokerStates.Fenced, caughtUp, shouldShutDown, KnownOffset);
        }
        finally
        {
            _heartbeatsInProgress--;
            _lastHeartbeat = TimeProvider.GetTimestamp();
        }
    }

    public async Task<long> UnregisterAsync()
    {
        var current = state.State.Current
            ?? throw MetaException.NotFound(ErrorCodes.BrokerIdNotRegistered, $"Broker {BrokerId} is not registered.");
        if (current.State != BrokerStates.Fenced || (SessionAlive && current.Change != BrokerChanges.ShutDown))
        {
            throw MetaException.Conflict(ErrorCodes.BrokerSessionAlive,
                $"Broker {BrokerId} (incarnation {current.IncarnationId}) is {current.State} and its session is alive; stop the broker process " +
                $"(or shut it down in a controlled way) and unregister it once it is fenced (session {_session.TotalSeconds:0.#} s).");
        }

        // Replicas are judged on an image at least as new as the log head: a lagging image could miss an assignment.
        var metadata = await image.WaitForAsync(await log.GetHeadAsync(CancellationToken.None), _imageWait);
        var hosted = metadata.Topics.Values
            .SelectMany(t => t.Partitions.Where(p => p.Replicas.Contains(BrokerId)).Select(p => $"{t.Topic.Name}-{p.Partition}"))
            .ToList();
        if (hosted.Count > 0)
        {
            throw MetaException.Conflict(ErrorCodes.BrokerHasReplicas,
                $"Broker {BrokerId} still holds {hosted.Count} replica{(hosted.Count > 1 ? "s" : "")} ({string.Join(", ", hosted.Take(5))}" +
                $"{(hosted.Count > 5 ? ", ..." : "")}); reassign them to other brokers (or delete their topics) first, then unregister it.");
        }

        var record = current with { State = BrokerStates.Fenced, Change = BrokerChanges.Unregistered, StateVersion = state.Version + 1 };
        state.State.Current = null;
        long offset;
        try
        {
            offset = await state.WriteStateAsync([Records.Broker(record)]) ?? 0;
        }
        catch
        {
            state.State.Current = current;
            throw;
        }

        LogUnregistered(logger, BrokerId, current.BrokerEpoch);
        return offset;
    }

    public Task PingAsync() => Task.CompletedTask;

    /// <summary>The offset an answer reports: never below this grain's own last write, so a caller that reads metadata
    /// at it sees what this call did, even while this silo's image is still applying it.</summary>
    private long KnownOffset => Math.Max(image.Current.Offset, _lastWrittenOffset);

    private bool SessionAlive => _heartbeatsInProgress > 0 || TimeProvider.GetElapsedTime(_lastHeartbeat) <= _session;

    /// <summary>
    /// Whether the broker leads no partition that another active in-sync replica could take over, on an image that holds
    /// its controlled-shutdown record. A partition whose move failed still shows this broker as leader, so it holds the
    /// shutdown back until the controller's next round moves it; one with no other active in-sync replica does not (it
    /// could never move).
    /// </summary>
    private async Task<bool> LeadsNothingMovableAsync(BrokerRecord current)
    {
        MetadataImage metadata;
        try
        {
            if (_controlledShutdownOffset == 0)
            {
                // Entered controlled shutdown under an earlier activation: any image at the head holds that record.
                _controlledShutdownOffset = await log.GetHeadAsync(CancellationToken.None);
            }

            metadata = await image.WaitForAsync(_controlledShutdownOffset, _imageWait);
        }
        catch (MetaException)
        {
            return false;
        }

        bool Active(int broker) => broker != BrokerId && metadata.Brokers.TryGetValue(broker, out var b) && b.IsActive;
        return !metadata.Topics.Values.Any(t => t.Partitions.Any(p => p.Leader == current.BrokerId && p.Isr.Any(Active)));
    }

    private async Task CheckSessionAsync()
    {
        if (state.State.Current is { } current && current.State != BrokerStates.Fenced && !SessionAlive)
        {
            LogSessionExpired(logger, BrokerId, current.BrokerEpoch);
            await TransitionAsync(current, BrokerStates.Fenced, BrokerChanges.SessionExpired);
        }
    }

    private async Task<BrokerRecord> TransitionAsync(BrokerRecord current, string newState, string change)
    {
        var next = current with { State = newState, Change = change, StateVersion = state.Version + 1 };
        var offset = await WriteAsync(next);
        if (change == BrokerChanges.ControlledShutdown)
        {
            _controlledShutdownOffset = offset;
        }

        // The controller re-elects where this broker matters (and moves leadership away in controlled shutdown). It is
        // told without waiting: its periodic reconcile covers a lost notification.
        var controller = GrainFactory.GetGrain<IControllerGrain>(IControllerGrain.Key);
        _ = controller.BrokerChangedAsync(BrokerId, offset).ContinueWith(
            t => LogNotifyFailed(logger, t.Exception!.GetBaseException(), BrokerId),
            CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
        return next;
    }

    /// <summary>Writes <paramref name="next"/> with its record; memory holds it only if the write committed.</summary>
    private async Task<long> WriteAsync(BrokerRecord next)
    {
        var previous = state.State.Current;
        state.State.Current = next;
        try
        {
            var offset = await state.WriteStateAsync([Records.Broker(next)])
                ?? throw new InvalidOperationException("The storage appended no metadata record for a broker change.");
            _lastWrittenOffset = offset;
            return offset;
        }
        catch
        {
            state.State.Current = previous;
            throw;
        }
    }

    private void ValidateRegistration(RegisterBroker registration)
    {
        var problems = new List<string>();
        if (BrokerId < 0)
        {
            problems.Add("the broker id must be 0 or greater");
        }

        if (registration.IncarnationId == Guid.Empty)
        {
            problems.Add("incarnationId must be a new random UUID for every broker process start");
        }

        if (registration.Listeners is not { Count: > 0 })
        {
            problems.Add("at least one listener is required");
        }
        else
        {
            foreach (var listener in registration.Listeners)
            {
                if (string.IsNullOrWhiteSpace(listener.Name) || string.IsNullOrWhiteSpace(listener.Host) || listener.Port is < 1 or > 65535)
                {
                    problems.Add($"listener '{listener.Name}' needs a name, a host and a port from 1 to 65535");
                }
            }

            if (registration.Listeners.Select(l => l.Name).Distinct(StringComparer.Ordinal).Count() != registration.Listeners.Count)
            {
                problems.Add("listener names must be unique");
            }
        }

        if (problems.Count > 0)
        {
            throw MetaException.Invalid(ErrorCodes.InvalidRequest, $"Invalid broker registration: {string.Join("; ", problems)}.");
        }
    }

    public override Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
        _sessionTimer?.Dispose();
        return Task.CompletedTask;
    }

    [LoggerMessage(2100, LogLevel.Information, "Broker {BrokerId} registered; its epoch is the registration's metadata offset {Offset}")]
    private static partial void LogRegistered(ILogger logger, int brokerId, long offset);

    [LoggerMessage(2101, LogLevel.Warning, "Broker {BrokerId} (epoch {Epoch}) missed its session; fencing it")]
    private static partial void LogSessionExpired(ILogger logger, int brokerId, long epoch);

    [LoggerMessage(2102, LogLevel.Warning, "Telling the controller about broker {BrokerId} failed; its periodic reconcile will catch up")]
    private static partial void LogNotifyFailed(ILogger logger, Exception exception, int brokerId);

    [LoggerMessage(2103, LogLevel.Information, "Broker {BrokerId} (epoch {Epoch}) was unregistered")]
    private static partial void LogUnregistered(ILogger logger, int brokerId, long epoch);
}

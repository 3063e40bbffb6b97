using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using OrleansMeta.Client.Models;
using OrleansMeta.GrainInterfaces;
using OrleansMeta.Grains.Metadata;
using OrleansMeta.Runtime;

namespace OrleansMeta.Grains;

public sealed class BrokerGrainState
{
    public BrokerRecord? Current { get; set; }
}

/// <summary>
/// One broker's registration and session. Heartbeats only touch memory; registration, unfencing, controlled shutdown
/// and session expiry are written (with their metadata records). A new activation (after a silo failure) gives the
/// broker a full session to heartbeat again before fencing it.
/// </summary>
[KeepsTruthInMemory]
internal sealed partial class BrokerGrain(
    [PersistentState("broker")] IPersistentState<BrokerGrainState> state,
    MetadataImageService image,
    IOptions<BrokerOptions> options,
    ILogger<BrokerGrain> logger) : Grain, IBrokerGrain
{
    private readonly TimeSpan _session = options.Value.SessionTimeout;
    private long _lastHeartbeat;
    private IDisposable? _sessionTimer;

    private int BrokerId => int.Parse(Key, System.Globalization.CultureInfo.InvariantCulture);

    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        _lastHeartbeat = TimeProvider.GetTimestamp();
        _sessionTimer = RegisterGrainTimer(_ => CheckSessionAsync(), options.Value.SessionCheckInterval, options.Value.SessionCheckInterval);
        return Task.CompletedTask;
    }

    public async Task<BrokerRegistration> RegisterAsync(RegisterBroker registration)
    {
        ValidateRegistration(registration);
        var current = state.State.Current;
        if (current is not null && current.IncarnationId == registration.IncarnationId)
        {
            // The same process asking again (its answer was lost): same epoch.
            _lastHeartbeat = TimeProvider.GetTimestamp();
            return new BrokerRegistration(BrokerId, current.BrokerEpoch, RegistrationOffset(current));
        }

        if (current is not null && current.State != BrokerStates.Fenced && SessionAlive)
        {
            throw MetaException.Conflict(ErrorCodes.DuplicateBrokerRegistration,
                $"Broker {BrokerId} is registered by incarnation {current.IncarnationId}, whose session is alive (last heartbeat " +
                $"{TimeProvider.GetElapsedTime(_lastHeartbeat).TotalSeconds:0.0} s ago; session {_session.TotalSeconds:0.#} s). " +
                "Stop the other process, or wait for its session to expire.");
        }

        var record = new BrokerRecord(BrokerId, registration.IncarnationId, state.Version + 1, registration.Listeners, registration.Rack,
            BrokerStates.Fenced, 0, "registered");
        state.State.Current = record;
        var offset = await state.WriteStateAsync([Records.Broker(record)]) ?? 0;
        state.State.Current = record with { RegistrationOffset = offset };
        _lastHeartbeat = TimeProvider.GetTimestamp();
        LogRegistered(logger, BrokerId, record.BrokerEpoch, offset);
        return new BrokerRegistration(BrokerId, record.BrokerEpoch, offset);
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

        _lastHeartbeat = TimeProvider.GetTimestamp();
        var registrationOffset = RegistrationOffset(current);
        var caughtUp = heartbeat.CurrentMetadataOffset >= registrationOffset;
        var shouldShutDown = false;

        if (current.State == BrokerStates.Fenced && caughtUp && !heartbeat.WantShutDown)
        {
            current = await TransitionAsync(current, BrokerStates.Unfenced, "unfenced");
        }
        else if (heartbeat.WantShutDown && current.State == BrokerStates.Unfenced)
        {
            current = await TransitionAsync(current, BrokerStates.ControlledShutdown, "controlled-shutdown");
        }

        if (heartbeat.WantShutDown)
        {
            // Leadership moves away first; the broker may stop only when it leads nothing that could move.
            shouldShutDown = current.State == BrokerStates.Fenced
                || await GrainFactory.GetGrain<IControllerGrain>(IControllerGrain.Key).ShutDownBrokerAsync(BrokerId, image.Current.Offset) == 0;
        }

        return new BrokerHeartbeatResult(current.State == BrokerStates.Fenced, caughtUp, shouldShutDown, image.Current.Offset);
    }

    public Task PingAsync() => Task.CompletedTask;

    private bool SessionAlive => TimeProvider.GetElapsedTime(_lastHeartbeat) <= _session;

    private long RegistrationOffset(BrokerRecord current)
        => current.RegistrationOffset > 0 ? current.RegistrationOffset
            : image.Current.Brokers.TryGetValue(BrokerId, out var known) && known.Record.BrokerEpoch == current.BrokerEpoch ? known.RegistrationOffset
            : long.MaxValue;

    private async Task CheckSessionAsync()
    {
        if (state.State.Current is { } current && current.State != BrokerStates.Fenced && !SessionAlive)
        {
            LogSessionExpired(logger, BrokerId, current.BrokerEpoch);
            await TransitionAsync(current, BrokerStates.Fenced, "session-expired");
        }
    }

    private async Task<BrokerRecord> TransitionAsync(BrokerRecord current, string newState, string change)
    {
        var next = current with { State = newState, Change = change, RegistrationOffset = RegistrationOffset(current) };
        state.State.Current = next;
        long offset;
        try
        {
            offset = await state.WriteStateAsync([Records.Broker(next)]) ?? 0;
        }
        catch
        {
            state.State.Current = current;
            throw;
        }

        // The controller re-elects where this broker matters. Its periodic reconcile covers a lost notification.
        var controller = GrainFactory.GetGrain<IControllerGrain>(IControllerGrain.Key);
        _ = controller.BrokerChangedAsync(BrokerId, offset).ContinueWith(
            t => LogNotifyFailed(logger, t.Exception!.GetBaseException(), BrokerId),
            CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
        return next;
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

    [LoggerMessage(2100, LogLevel.Information, "Broker {BrokerId} registered with epoch {Epoch} at metadata offset {Offset}")]
    private static partial void LogRegistered(ILogger logger, int brokerId, long epoch, long offset);

    [LoggerMessage(2101, LogLevel.Warning, "Broker {BrokerId} (epoch {Epoch}) missed its session; fencing it")]
    private static partial void LogSessionExpired(ILogger logger, int brokerId, long epoch);

    [LoggerMessage(2102, LogLevel.Warning, "Telling the controller about broker {BrokerId} failed; its periodic reconcile will catch up")]
    private static partial void LogNotifyFailed(ILogger logger, Exception exception, int brokerId);
}

using System.Collections.Concurrent;
using System.Diagnostics;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using OrleansMeta.Contracts;

namespace OrleansMeta.Client.Tests;

/// <summary>A heartbeat as the fake controller received it, with the time since the controller started.</summary>
internal sealed record ReceivedHeartbeat(int Number, BrokerHeartbeatRequest Request, TimeSpan At);

/// <summary>
/// The broker endpoints of a silo on a <see cref="FakeSilo"/>, with the service's rules by default: registration n
/// answers epoch 10·n at offset 100·n (the same incarnation again gets the same epoch), a heartbeat with another epoch is
/// STALE_BROKER_EPOCH, a broker is unfenced once its offset reaches its registration's, and a controlled shutdown is
/// granted at once. Tests replace a rule through <see cref="Heartbeat"/> or <see cref="Register"/>.
/// </summary>
internal sealed class FakeController : IAsyncDisposable
{
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly ConcurrentQueue<BrokerRegistrationRequest> _registrations = new();
    private readonly ConcurrentQueue<ReceivedHeartbeat> _heartbeats = new();
    private readonly Lock _lock = new();
    private int _heartbeatCount;
    private Guid _incarnation;

    private FakeController()
    {
        Register = DefaultRegister;
        Heartbeat = (_, request) => DefaultHeartbeat(request);
    }

    public FakeSilo Silo { get; private set; } = null!;

    /// <summary>Answers registration n (from 1) to a request.</summary>
    public Func<int, BrokerRegistrationRequest, IResult> Register { get; set; }

    /// <summary>Answers heartbeat n (from 1) to a request; runs after the heartbeat is recorded.</summary>
    public Func<int, BrokerHeartbeatRequest, Task<IResult>> Heartbeat { get; set; }

    public long Epoch { get; private set; } = -1;

    public long RegistrationOffset { get; private set; } = -1;

    public IReadOnlyList<BrokerRegistrationRequest> Registrations => [.. _registrations];

    public IReadOnlyList<ReceivedHeartbeat> Heartbeats => [.. _heartbeats];

    public static async Task<FakeController> StartAsync()
    {
        var controller = new FakeController();
        controller.Silo = await FakeSilo.StartAsync(app =>
        {
            app.MapPost("/v1/brokers/{id:int}/registration", (int id, BrokerRegistrationRequest request) =>
            {
                controller._registrations.Enqueue(request);
                return controller.Register(controller._registrations.Count, request);
            });
            app.MapPost("/v1/brokers/{id:int}/heartbeat", (int id, BrokerHeartbeatRequest request) =>
            {
                var number = Interlocked.Increment(ref controller._heartbeatCount);
                controller._heartbeats.Enqueue(new ReceivedHeartbeat(number, request, controller._clock.Elapsed));
                return controller.Heartbeat(number, request);
            });
        });
        return controller;
    }

    /// <summary>The service's rule: the same incarnation keeps its epoch; a new one gets the next.</summary>
    public IResult DefaultRegister(int number, BrokerRegistrationRequest request)
    {
        lock (_lock)
        {
            if (request.IncarnationId != _incarnation || Epoch < 0)
            {
                _incarnation = request.IncarnationId;
                Epoch = 10 * number;
                RegistrationOffset = 100 * number;
            }

            return Results.Ok(new BrokerRegistrationResponse(1, Epoch, RegistrationOffset));
        }
    }

    /// <summary>Registers under a new epoch, as after the broker was unregistered: the next registration of any
    /// incarnation gets a new epoch.</summary>
    public void Forget()
    {
        lock (_lock)
        {
            _incarnation = Guid.Empty;
        }
    }

    public Task<IResult> DefaultHeartbeat(BrokerHeartbeatRequest request)
    {
        lock (_lock)
        {
            if (request.BrokerEpoch != Epoch)
            {
                return Task.FromResult(ErrorTests.Problem(409, ErrorCodes.StaleBrokerEpoch, false));
            }

            var caughtUp = request.CurrentMetadataOffset >= RegistrationOffset;
            return Task.FromResult<IResult>(Results.Ok(new BrokerHeartbeatResponse(
                IsFenced: !caughtUp, IsCaughtUp: caughtUp, ShouldShutDown: request.WantShutDown, MetadataOffset: RegistrationOffset)));
        }
    }

    /// <summary>A client with near-zero backoff and one attempt per call, so the session's own retries show.</summary>
    public MetaClient Client() => Samples.Client(o => o.MaxAttempts = 1, Silo.Url);

    public ValueTask DisposeAsync() => Silo.DisposeAsync();
}

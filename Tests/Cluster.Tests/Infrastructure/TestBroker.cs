using OrleansMeta.Client;
using OrleansMeta.Contracts;

namespace OrleansMeta.Cluster.Tests.Infrastructure;

/// <summary>
/// A broker as the service sees one: registers, then heartbeats in the background, reporting the newest metadata
/// offset it has seen as applied (so it is caught up). Stopping the heartbeats is how a test makes it die.
/// </summary>
public sealed class TestBroker(MetaClient client, int id, string? rack = null) : IAsyncDisposable
{
    private CancellationTokenSource? _heartbeats;
    private Task? _loop;
    private long _offset;

    public int Id { get; } = id;

    public long Epoch { get; private set; }

    public bool IsFenced { get; private set; } = true;

    public async Task StartAsync()
    {
        var registration = await client.RegisterBrokerAsync(Id, new BrokerRegistrationRequest(
            Guid.NewGuid(), [new BrokerListener("PLAINTEXT", $"broker-{Id}.test", 9092)], rack));
        Epoch = registration.BrokerEpoch;
        _offset = registration.MetadataOffset;
        _heartbeats = new CancellationTokenSource();
        var token = _heartbeats.Token;
        _loop = Task.Run(async () =>
        {
            while (!token.IsCancellationRequested)
            {
                try
                {
                    var answer = await client.SendBrokerHeartbeatAsync(Id, new BrokerHeartbeatRequest(Epoch, _offset), token);
                    _offset = Math.Max(_offset, answer.MetadataOffset);
                    IsFenced = answer.IsFenced;
                }
                catch (Exception) when (token.IsCancellationRequested)
                {
                    break;
                }
                catch (Exception)
                {
                    // A silo may be down for a moment; the next heartbeat goes elsewhere.
                }

                await Task.Delay(200, token).ContinueWith(_ => { }, TaskScheduler.Default);
            }
        }, CancellationToken.None);
    }

    /// <summary>Waits until the service reports this broker unfenced.</summary>
    /// <summary>Starts a broker per id (all registering at once, as a cluster's brokers do) and waits until each is unfenced.</summary>
    public static async Task<List<TestBroker>> StartUnfencedAsync(MetaClient client, params int[] ids)
    {
        var brokers = ids.Select(id => new TestBroker(client, id)).ToList();
        foreach (var broker in brokers)
        {
            await broker.StartAsync();
        }

        foreach (var broker in brokers)
        {
            await broker.WaitUnfencedAsync();
        }

        return brokers;
    }

    public Task WaitUnfencedAsync() => Eventually.Until(() => Task.FromResult(!IsFenced), $"broker {Id} is unfenced", TimeSpan.FromSeconds(30));

    /// <summary>The broker dies: no more heartbeats (its session expires).</summary>
    public async Task StopHeartbeatsAsync()
    {
        if (_heartbeats is not null)
        {
            await _heartbeats.CancelAsync();
            await _loop!;
            _heartbeats.Dispose();
            _heartbeats = null;
        }
    }

    public async ValueTask DisposeAsync() => await StopHeartbeatsAsync();
}

using System.Collections.Concurrent;
using System.Net.Http.Json;
using System.Runtime.CompilerServices;
using Microsoft.Extensions.Logging;
using OrleansMeta.Runtime.Activation;
using OrleansMeta.Runtime.Calls;
using OrleansMeta.Runtime.Cluster;
using OrleansMeta.Runtime.Placement;
using Polly;
using Polly.Retry;

namespace OrleansMeta.Runtime.Messaging;

/// <summary>
/// Routes every grain call: to the local catalog when this silo owns the grain in its current view, otherwise in one
/// hop to the owner over HTTP/2. Calls that were never delivered (connection refused, or the receiver does not own
/// the grain in its view) are retried on a refreshed view until the call's own timeout; a call that may have been
/// delivered is never retried, its caller gets a retryable error instead.
/// </summary>
internal sealed partial class ClusterCallDispatcher : IGrainCallDispatcher
{
    private readonly ActivationCatalog _catalog;
    private readonly IClusterMembership _membership;
    private readonly SiloHttpClient _http;
    private readonly GrainCallCodec _codec;
    private readonly ILogger<ClusterCallDispatcher> _logger;
    private readonly ResiliencePipeline _undeliveredRetry;
    private readonly ConcurrentDictionary<string, StrongBox<long>> _forwarded = new(StringComparer.Ordinal);
    private long _lastRefresh;

    public ClusterCallDispatcher(
        ActivationCatalog catalog,
        IClusterMembership membership,
        SiloHttpClient http,
        GrainCallCodec codec,
        ILogger<ClusterCallDispatcher> logger)
    {
        _catalog = catalog;
        _membership = membership;
        _http = http;
        _codec = codec;
        _logger = logger;
        _undeliveredRetry = new ResiliencePipelineBuilder()
            .AddRetry(new RetryStrategyOptions
            {
                ShouldHandle = new PredicateBuilder().Handle<NotOwnerException>().Handle<HttpRequestException>(IsUndelivered),
                MaxRetryAttempts = int.MaxValue,
                BackoffType = DelayBackoffType.Exponential,
                UseJitter = true,
                Delay = TimeSpan.FromMilliseconds(20),
                MaxDelay = TimeSpan.FromMilliseconds(500),
                OnRetry = args =>
                {
                    Log.Retrying(_logger, args.AttemptNumber + 1, args.Outcome.Exception?.Message);
                    return RefreshViewAsync(args.Context.CancellationToken);
                },
            })
            .Build();
    }

    public void Dispatch(GrainRequest request)
    {
        var owner = RendezvousPlacement.Owner(request.Target, _membership.CurrentView.ActiveSilos);
        if (owner is not null && owner == _membership.Self)
        {
            if (_membership.IsActive)
            {
                _catalog.Dispatch(request);
            }
            else
            {
                request.SetException(NotServing());
            }

            return;
        }

        // Counted only on this path, which costs an HTTP round trip anyway.
        Interlocked.Increment(ref _forwarded.GetOrAdd(request.Target.Type, static _ => new StrongBox<long>()).Value);
        _ = SendAsync(request);
    }

    /// <summary>How many calls to grains of <paramref name="grainType"/> this silo has sent to another silo because it
    /// did not own the grain (forwarded API calls and grain-to-grain calls alike), since it started.</summary>
    public long ForwardedCalls(string grainType) => _forwarded.TryGetValue(grainType, out var count) ? Interlocked.Read(ref count.Value) : 0;

    /// <summary>Whether this silo owns <paramref name="grainId"/> in its current view.</summary>
    public bool IsLocalOwner(GrainId grainId)
        => _membership.Self is { } self && RendezvousPlacement.Owner(grainId, _membership.CurrentView.ActiveSilos) == self;

    private SiloUnavailableException NotServing() => new(
        $"Silo {_membership.Self} owns this grain in its last view but is not active (joining, leaving, declared dead or cut off " +
        "from the membership table), so it does not serve it; retry, another silo takes over.");

    private async Task SendAsync(GrainRequest request)
    {
        try
        {
            var message = _codec.Encode(request);
            var delivered = await _undeliveredRetry.ExecuteAsync(
                async (state, token) =>
                {
                    var (self, request, message) = state;
                    var owner = RendezvousPlacement.Owner(request.Target, self._membership.CurrentView.ActiveSilos)
                        ?? throw new SiloUnavailableException(
                            "No silo is active in this silo's view of the cluster, so nobody owns the grain yet; retry once the cluster has formed.");
                    if (owner == self._membership.Self)
                    {
                        // The view moved while we waited: this silo is the owner now.
                        return self._membership.IsActive ? false : throw self.NotServing();
                    }

                    using var httpRequest = new HttpRequestMessage(HttpMethod.Post, "silo/v1/calls")
                    {
                        Content = JsonContent.Create(message, options: self._codec.Json),
                    };
                    using var response = await self._http.SendAsync(owner, httpRequest, self._membership.Self, token).ConfigureAwait(false);
                    if (!response.IsSuccessStatusCode)
                    {
                        throw new SiloUnavailableException(
                            $"Silo {owner} answered the call to {request.Target} with HTTP {(int)response.StatusCode}; retry.");
                    }

                    var result = await response.Content.ReadFromJsonAsync<RemoteResult>(self._codec.Json, token).ConfigureAwait(false)
                        ?? throw new SiloUnavailableException($"Silo {owner} sent an empty answer for {request.Target}.");
                    request.SetResult(self._codec.DecodeResult(request.Method, result));
                    return true;
                },
                (this, request, message),
                request.CancellationToken).ConfigureAwait(false);

            if (!delivered)
            {
                _catalog.Dispatch(request);
            }
        }
        catch (OperationCanceledException) when (request.CancellationToken.IsCancellationRequested)
        {
            request.SetCanceled();
        }
        catch (HttpRequestException exception)
        {
            request.SetException(new SiloUnavailableException(
                $"The call to {request.Target} may not have completed: the owning silo's connection failed ({exception.Message}). Retry if the call is idempotent."));
        }
        catch (Exception exception)
        {
            request.SetException(exception);
        }
    }

    private static bool IsUndelivered(HttpRequestException exception) => exception.HttpRequestError == HttpRequestError.ConnectionError;

    private async ValueTask RefreshViewAsync(CancellationToken cancellationToken)
    {
        // Many failing calls at once share one refresh rather than each reading the membership table.
        var now = Environment.TickCount64;
        var last = Interlocked.Read(ref _lastRefresh);
        if (now - last < 200 || Interlocked.CompareExchange(ref _lastRefresh, now, last) != last)
        {
            return;
        }

        try
        {
            await _membership.RefreshAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception exception) when (exception is not OperationCanceledException)
        {
            Log.RefreshFailed(_logger, exception);
        }
    }

    private static partial class Log
    {
        [LoggerMessage(1200, LogLevel.Debug, "Grain call not delivered; retry {Attempt} on a refreshed view: {Reason}")]
        public static partial void Retrying(ILogger logger, int attempt, string? reason);

        [LoggerMessage(1201, LogLevel.Warning, "Refreshing the membership view after an undelivered call failed")]
        public static partial void RefreshFailed(ILogger logger, Exception exception);
    }
}

using System.Net.Http.Headers;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using OrleansMeta.Contracts;
using Polly;
using Polly.Retry;

namespace OrleansMeta.Client.Internal;

/// <summary>Sends one API call: picks a silo, runs attempts through the retry pipeline, maps failures to
/// <see cref="MetaApiException"/>. See <see cref="MetaClient"/> for the retry rules.</summary>
internal sealed class MetaTransport : IDisposable
{
    private static readonly MediaTypeHeaderValue JsonContentType = new("application/json") { CharSet = "utf-8" };

    private readonly Uri[] _silos;
    private readonly HttpClient _http;
    private readonly bool _ownsHttp;
    private readonly bool _ownsHandler;
    private readonly TimeSpan _requestTimeout;
    private readonly ResiliencePipeline _pipeline;
    private int _current;

    /// <summary>Which silos own the grains behind routed calls, when <see cref="MetaClientOptions.RouteCallsToOwner"/> is on.</summary>
    internal OwnerCache? Owners { get; }

    /// <summary>The highest metadata offset seen in this client's answers, and the <c>minOffset</c> its reads carry.</summary>
    internal SessionOffset Session { get; }

    internal MetaTransport(MetaClientOptions options)
    {
        // A base URL without a trailing slash would lose its last segment when combined with a relative path.
        _silos = [.. options.BootstrapUrls.Select(u => u.AbsoluteUri.EndsWith('/') ? u : new Uri(u.AbsoluteUri + "/"))];
        _requestTimeout = options.RequestTimeout;
        WatchIdleTimeout = options.WatchIdleTimeout;
        RetryDelays = (options.RetryBaseDelay, options.RetryMaxDelay);
        Owners = options.RouteCallsToOwner ? new OwnerCache(TimeProvider.System) : null;
        Session = new SessionOffset(options.MonotonicReads);
        if (options.HttpClient is { } client)
        {
            _http = client;
        }
        else
        {
            _http = options.HttpMessageHandler is { } handler
                ? new HttpClient(handler, disposeHandler: false)
                : new HttpClient(new SocketsHttpHandler
                {
                    // New connections now and then, so that DNS changes (a silo replaced) are seen.
                    PooledConnectionLifetime = TimeSpan.FromMinutes(2),
                    // Shorter than an attempt, so that a silo that does not accept connections (host down) is told
                    // apart from one that took the request and did not answer, and a write can go to the next silo.
                    ConnectTimeout = ConnectTimeoutFor(options.RequestTimeout),
                });
            _ownsHandler = options.HttpMessageHandler is null;
            _http.Timeout = Timeout.InfiniteTimeSpan; // The per-attempt timeout is ours.
            _ownsHttp = true;
        }

        var maxDelay = options.RetryMaxDelay;
        _pipeline = options.MaxAttempts == 1
            ? ResiliencePipeline.Empty
            : new ResiliencePipelineBuilder().AddRetry(new RetryStrategyOptions
            {
                ShouldHandle = new PredicateBuilder().Handle<MetaApiException>(e => e.ShouldResend),
                MaxRetryAttempts = options.MaxAttempts - 1,
                BackoffType = DelayBackoffType.Exponential,
                UseJitter = true,
                Delay = options.RetryBaseDelay,
                MaxDelay = options.RetryMaxDelay,
                // A silo's Retry-After wins over the backoff, within the same cap.
                DelayGenerator = args => ValueTask.FromResult(
                    args.Outcome.Exception is MetaApiException { RetryAfter: { } after } && after > TimeSpan.Zero
                        ? (TimeSpan?)(after < maxDelay ? after : maxDelay)
                        : null),
            }).Build();
    }

    /// <summary>Sends a call and reads its answer as <typeparamref name="T"/>. With <paramref name="route"/> (a key of
    /// <see cref="Routes"/>: a consumer group's heartbeats, commits and fetches, a topic's or partition's writes, a
    /// broker's heartbeats), the call goes to the silo owning the route's grain when it is known rather than to the
    /// bootstrap silos.</summary>
    internal async Task<T> SendAsync<T>(
        HttpMethod method,
        string path,
        byte[]? body,
        JsonTypeInfo<T> responseType,
        CancellationToken cancellationToken,
        string? route = null)
    {
        var call = new Call<T>(this, method, path, body, responseType, Owners is null ? null : route);
        return await _pipeline.ExecuteAsync(
            static (call, token) => call.Transport.AttemptAsync(call, token),
            call,
            cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The HTTP client calls go through (watches use it directly: a stream is not one call).</summary>
    internal HttpClient Http => _http;

    /// <summary>The idle limit of a watch connection (<see cref="MetaClientOptions.WatchIdleTimeout"/>).</summary>
    internal TimeSpan WatchIdleTimeout { get; private init; }

    /// <summary>The retry delays, which a watch's reconnections follow too.</summary>
    internal (TimeSpan Base, TimeSpan Max) RetryDelays { get; private init; }

    /// <summary>The bootstrap silo in use, and its index for <see cref="MoveOnFrom"/>.</summary>
    internal (Uri Silo, int Index) CurrentSilo()
    {
        var index = Volatile.Read(ref _current);
        return (_silos[index % _silos.Length], index);
    }

    /// <summary>Moves on to the next bootstrap silo after <paramref name="index"/> failed, unless another call already did.</summary>
    internal void MoveOnFrom(int index) => Interlocked.CompareExchange(ref _current, (index + 1) % _silos.Length, index);

    internal static byte[] Serialize<T>(T value, JsonTypeInfo<T> type) => JsonSerializer.SerializeToUtf8Bytes(value, type);

    public void Dispose()
    {
        if (_ownsHttp)
        {
            _http.Dispose();
        }
    }

    private async ValueTask<T> AttemptAsync<T>(Call<T> call, CancellationToken cancellationToken)
    {
        // A routed call goes to its grain's owner when one is known; otherwise (and after a call there failed) to the
        // bootstrap silo in use, which forwards it and names the owner in its answer. -1: no bootstrap silo to move on from.
        int index;
        Uri silo;
        if (call.Route is not null && Owners!.TryGet(call.Route, out var owner))
        {
            (index, silo) = (-1, owner);
        }
        else
        {
            index = Volatile.Read(ref _current);
            silo = _silos[index % _silos.Length];
        }

        using var request = new HttpRequestMessage(call.Method, new Uri(silo, call.Path));
        request.Headers.Accept.ParseAdd("application/json");
        request.Headers.Accept.ParseAdd("application/problem+json");
        if (call.Body is not null)
        {
            request.Content = new ByteArrayContent(call.Body);
            request.Content.Headers.ContentType = JsonContentType;
        }

        using var attempt = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        attempt.CancelAfter(_requestTimeout);
        HttpResponseMessage response;
        try
        {
            response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, attempt.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException e) when (cancellationToken.IsCancellationRequested)
        {
            throw new OperationCanceledException("The call was cancelled.", e, cancellationToken);
        }
        catch (OperationCanceledException e) when (_ownsHandler && !attempt.IsCancellationRequested && e.InnerException is TimeoutException)
        {
            // Our handler's ConnectTimeout (its only other timeout): no connection, so nothing was sent.
            MoveOn(call, silo, index);
            throw new MetaApiException(ErrorCodes.Unavailable, $"Could not connect to the silo: {e.InnerException.Message}",
                statusCode: null, isRetryable: true, silo, outcomeUnknown: false, e)
            { ShouldResend = true };
        }
        catch (OperationCanceledException e)
        {
            MoveOn(call, silo, index);
            throw TimedOut(call, silo, e);
        }
        catch (HttpRequestException e)
        {
            MoveOn(call, silo, index);
            throw TransportFailed(call, silo, e);
        }

        using (response)
        {
            try
            {
                if (ProblemReader.IsSuccess(response.StatusCode))
                {
                    if (call.Route is not null
                        && (response.Headers.TryGetValues(RoutingHeaders.Owner, out var named) || response.Headers.TryGetValues(GroupHeaders.Coordinator, out named)))
                    {
                        Owners!.Learn(call.Route, named.FirstOrDefault());
                    }

                    var stream = await response.Content.ReadAsStreamAsync(attempt.Token).ConfigureAwait(false);
                    await using (stream.ConfigureAwait(false))
                    {
                        var answer = await JsonSerializer.DeserializeAsync(stream, call.ResponseType, attempt.Token).ConfigureAwait(false)
                            ?? throw new MetaApiException(ProblemReader.UnknownServerError, "The silo answered with an empty body.", (int)response.StatusCode, siloUrl: silo);
                        if (answer is IMetadataOffsetAnswer seen)
                        {
                            Session.Observe(seen.MetadataOffset);
                        }

                        return answer;
                    }
                }

                var body = await ProblemReader.ReadBodyAsync(response.Content, attempt.Token).ConfigureAwait(false);
                var problem = ProblemReader.Create(response, body, silo, call.Idempotent);
                if (problem.IsRetryable)
                {
                    MoveOn(call, silo, index); // Another silo may be able to answer (joined, caught up, not overloaded).
                }

                throw problem;
            }
            catch (OperationCanceledException e) when (cancellationToken.IsCancellationRequested)
            {
                throw new OperationCanceledException("The call was cancelled.", e, cancellationToken);
            }
            catch (OperationCanceledException e)
            {
                MoveOn(call, silo, index);
                throw TimedOut(call, silo, e);
            }
            catch (Exception e) when (e is HttpRequestException or IOException)
            {
                // The answer began and then broke off: the request was processed, or not.
                MoveOn(call, silo, index);
                throw new MetaApiException(ErrorCodes.Unavailable, $"The connection broke while reading the answer: {e.Message}",
                    (int)response.StatusCode, isRetryable: true, silo, outcomeUnknown: !call.Idempotent, e)
                { ShouldResend = call.Idempotent };
            }
            catch (JsonException e)
            {
                throw new MetaApiException(ProblemReader.UnknownServerError, $"The silo's answer is not the expected JSON: {e.Message}",
                    (int)response.StatusCode, siloUrl: silo, innerException: e);
            }
        }
    }

    /// <summary>Half the attempt timeout, at most 10 seconds.</summary>
    internal static TimeSpan ConnectTimeoutFor(TimeSpan requestTimeout) =>
        requestTimeout / 2 < TimeSpan.FromSeconds(10) ? requestTimeout / 2 : TimeSpan.FromSeconds(10);

    /// <summary>After a failure that another silo may not meet: a route's owner is dropped (the route's calls go to the
    /// bootstrap silos again); a bootstrap silo is moved on from, unless another call already did.</summary>
    private void MoveOn<T>(Call<T> call, Uri silo, int index)
    {
        if (index < 0)
        {
            Owners!.Failed(call.Route!, silo);
        }
        else
        {
            Interlocked.CompareExchange(ref _current, (index + 1) % _silos.Length, index);
        }
    }

    private MetaApiException TimedOut<T>(Call<T> call, Uri silo, Exception inner) =>
        new(ErrorCodes.Timeout,
            call.Idempotent
                ? $"No answer within {_requestTimeout}."
                : $"No answer within {_requestTimeout}; the {call.Method} may or may not have been applied and was not resent.",
            statusCode: null, isRetryable: true, silo, outcomeUnknown: !call.Idempotent, inner)
        { ShouldResend = call.Idempotent };

    private static MetaApiException TransportFailed<T>(Call<T> call, Uri silo, HttpRequestException e)
    {
        // These errors happen before any byte of the request is sent: safe to send again, to another silo.
        var notDelivered = e.HttpRequestError is HttpRequestError.NameResolutionError or HttpRequestError.ConnectionError
            or HttpRequestError.SecureConnectionError or HttpRequestError.ProxyTunnelError;
        var resend = notDelivered || call.Idempotent;
        return new MetaApiException(
            ErrorCodes.Unavailable,
            notDelivered ? $"Could not reach the silo: {e.Message}" : $"The request failed in transit: {e.Message}",
            statusCode: null,
            isRetryable: true,
            silo,
            outcomeUnknown: !resend,
            e)
        { ShouldResend = resend };
    }

    private sealed record Call<T>(MetaTransport Transport, HttpMethod Method, string Path, byte[]? Body, JsonTypeInfo<T> ResponseType, string? Route)
    {
        /// <summary>GET, PUT, DELETE and HEAD may be sent again after an attempt whose outcome is unknown; POST and PATCH may not.</summary>
        public bool Idempotent { get; } = Method == HttpMethod.Get || Method == HttpMethod.Put || Method == HttpMethod.Delete || Method == HttpMethod.Head;
    }
}

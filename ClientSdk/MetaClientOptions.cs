namespace OrleansMeta.Client;

/// <summary>Settings of a <see cref="MetaClient"/>. The client copies them when it is constructed; later changes have
/// no effect on it.</summary>
public sealed class MetaClientOptions
{
    /// <summary>Base URLs of silos, e.g. <c>http://meta-0:5080/</c>. Any silo serves every request: the client uses
    /// one until it fails to answer, then moves on to the next. Required; at least one absolute http or https URL.</summary>
    public IList<Uri> BootstrapUrls { get; set; } = [];

    /// <summary>How long one attempt may take, from sending the request to reading the whole response. A call may make
    /// several attempts (see <see cref="MaxAttempts"/>). Unless a handler or HttpClient is injected, connecting may take at
    /// most half of it (10 seconds at most): a silo that does not accept the connection by then is skipped as unreachable,
    /// and even a write moves on to the next silo. Default: 30 seconds.</summary>
    public TimeSpan RequestTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Attempts per call, the first included; 1 turns retries off. Default: 5.</summary>
    public int MaxAttempts { get; set; } = 5;

    /// <summary>Delay before the first retry; later retries double it, with jitter, up to <see cref="RetryMaxDelay"/>.
    /// A <c>Retry-After</c> header on a 429 or 503 answer takes precedence (still capped). Default: 100 milliseconds.</summary>
    public TimeSpan RetryBaseDelay { get; set; } = TimeSpan.FromMilliseconds(100);

    /// <summary>The longest delay between two attempts. Default: 2 seconds.</summary>
    public TimeSpan RetryMaxDelay { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>A handler to send requests through (e.g. for TLS client certificates, proxies, or telemetry). The
    /// caller owns it: the client does not dispose it. Mutually exclusive with <see cref="HttpClient"/>.
    /// Default: null (the client creates and owns a <see cref="SocketsHttpHandler"/>).</summary>
    public HttpMessageHandler? HttpMessageHandler { get; set; }

    /// <summary>An <see cref="System.Net.Http.HttpClient"/> to send requests with, e.g. one from
    /// <c>IHttpClientFactory</c>. The caller owns it; its <see cref="HttpClient.BaseAddress"/> is ignored and its own
    /// <see cref="HttpClient.Timeout"/> applies on top of <see cref="RequestTimeout"/>. Mutually exclusive with
    /// <see cref="HttpMessageHandler"/>. Default: null.</summary>
    public HttpClient? HttpClient { get; set; }

    /// <summary>Whether calls for one grain go straight to the silo that owns it, saving the hop a silo that does not own
    /// it makes to forward them: a consumer group's heartbeats, offset commits and offset fetches (to its coordinator, as
    /// Kafka's FindCoordinator), a topic's creation, deletion, partition additions and config changes, a partition's
    /// AlterPartition, and a broker's registration, heartbeats and unregistration. The client learns the owner from
    /// <see cref="IMetaClient.FindCoordinatorAsync"/> or from the first such call (a silo that forwarded a call names the
    /// owner in its answer), never with an extra request of its own; when a call sent there fails (the silo went away, or
    /// is not serving), the calls go to <see cref="BootstrapUrls"/> again until a silo names the new owner. Turn it off
    /// when the silos' advertised URLs are not reachable from this client (all traffic must pass a gateway). Default: true.</summary>
    public bool RouteCallsToOwner { get; set; } = true;

    /// <summary>Whether the client never reads older metadata than it has already seen or written: ZooKeeper's session
    /// guarantee (monotonic reads, read your writes). Writes are applied by the silo owning their grain, while reads are
    /// answered by whichever silo the client uses, from its in-memory image of the metadata log, which may be a few
    /// milliseconds behind. With this on, each metadata read (topics, brokers, configs, metadata and deltas) is sent
    /// with <c>minOffset</c> = <see cref="IMetaClient.SeenMetadataOffset"/>, the highest offset in any answer the client
    /// has had (a write's, a read's, or a watch event's), and the silo waits until its image has reached it. A
    /// <c>minOffset</c> given to a call is raised to that offset when lower and sent as given when higher. A silo that
    /// cannot catch up in time answers OFFSET_NOT_AVAILABLE, which is retried on the next silo like any retryable
    /// error. Turn it off to read whatever the silo has now, e.g. for monitoring that must never wait.
    /// Default: true.</summary>
    public bool MonotonicReads { get; set; } = true;

    /// <summary>How long a watch (<see cref="IMetaClient.WatchAsync"/>) waits without receiving a byte (silos send a
    /// keep-alive every 15 seconds by default) before it takes the connection for dead and reconnects. Default: 45 seconds.</summary>
    public TimeSpan WatchIdleTimeout { get; set; } = TimeSpan.FromSeconds(45);

    private static readonly TimeSpan MaxRetryDelay = TimeSpan.FromDays(1);

    /// <summary>Every problem with these options, each a sentence that says how to fix it; empty when valid.</summary>
    internal List<string> Validate()
    {
        var problems = new List<string>();
        if (BootstrapUrls is null || BootstrapUrls.Count == 0)
        {
            problems.Add("BootstrapUrls is empty: add the base URL of at least one silo, e.g. http://127.0.0.1:5080/.");
        }
        else
        {
            for (var i = 0; i < BootstrapUrls.Count; i++)
            {
                var url = BootstrapUrls[i];
                if (url is null)
                {
                    problems.Add($"BootstrapUrls[{i}] is null: remove it.");
                }
                else if (!url.IsAbsoluteUri || (url.Scheme != Uri.UriSchemeHttp && url.Scheme != Uri.UriSchemeHttps))
                {
                    problems.Add($"BootstrapUrls[{i}] '{url}' is not an absolute http or https URL.");
                }
                else if (url.Query.Length > 0 || url.Fragment.Length > 0)
                {
                    problems.Add($"BootstrapUrls[{i}] '{url}' has a query or fragment: give the silo's base URL only.");
                }
            }
        }

        if (RequestTimeout <= TimeSpan.Zero || RequestTimeout.TotalMilliseconds > int.MaxValue)
        {
            problems.Add($"RequestTimeout is {RequestTimeout}: it must be positive and at most {TimeSpan.FromMilliseconds(int.MaxValue)}.");
        }

        if (MaxAttempts < 1)
        {
            problems.Add($"MaxAttempts is {MaxAttempts}: it must be at least 1 (1 turns retries off).");
        }

        if (RetryBaseDelay < TimeSpan.Zero || RetryBaseDelay > MaxRetryDelay)
        {
            problems.Add($"RetryBaseDelay is {RetryBaseDelay}: it must be between zero and {MaxRetryDelay}.");
        }

        if (RetryMaxDelay > MaxRetryDelay)
        {
            problems.Add($"RetryMaxDelay is {RetryMaxDelay}: it must be at most {MaxRetryDelay}.");
        }

        if (RetryMaxDelay < RetryBaseDelay)
        {
            problems.Add($"RetryMaxDelay ({RetryMaxDelay}) is less than RetryBaseDelay ({RetryBaseDelay}): raise it or lower RetryBaseDelay.");
        }

        if (WatchIdleTimeout <= TimeSpan.Zero || WatchIdleTimeout.TotalMilliseconds > int.MaxValue)
        {
            problems.Add($"WatchIdleTimeout is {WatchIdleTimeout}: it must be positive and at most {TimeSpan.FromMilliseconds(int.MaxValue)} (longer than the silos' keep-alive interval).");
        }

        if (HttpMessageHandler is not null && HttpClient is not null)
        {
            problems.Add("Both HttpMessageHandler and HttpClient are set: set at most one.");
        }

        return problems;
    }
}

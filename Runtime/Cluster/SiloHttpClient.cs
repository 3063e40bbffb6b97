using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Options;

namespace OrleansMeta.Runtime.Cluster;

/// <summary>
/// The one HTTP client for silo-to-silo traffic: cleartext HTTP/2 with prior knowledge (never a silent fall back to
/// HTTP/1.1), pooled and multiplexed connections, the cluster secret on every request, and only to silos named by
/// membership. Connections leave from <see cref="ClusterOptions.SiloOutboundAddress"/> when one is set.
/// </summary>
public sealed class SiloHttpClient : IDisposable
{
    /// <summary>Header carrying the cluster secret.</summary>
    public const string SecretHeader = "X-Meta-Cluster-Secret";

    /// <summary>Header naming the calling silo (<see cref="SiloAddress.ToString"/>), for logs and diagnostics.</summary>
    public const string CallerHeader = "X-Meta-Silo";

    private readonly HttpClient _http;
    private readonly string? _secret;

    public SiloHttpClient(IOptions<ClusterOptions> options)
    {
        _secret = options.Value.ClusterSecret;
        var handler = new SocketsHttpHandler
        {
            EnableMultipleHttp2Connections = true,
            ConnectTimeout = TimeSpan.FromSeconds(2),
            PooledConnectionIdleTimeout = TimeSpan.FromMinutes(2),
            KeepAlivePingDelay = TimeSpan.FromSeconds(10),
            KeepAlivePingTimeout = TimeSpan.FromSeconds(5),
            KeepAlivePingPolicy = HttpKeepAlivePingPolicy.WithActiveRequests,
            AutomaticDecompression = DecompressionMethods.None,
            UseProxy = false,
        };
        if (!string.IsNullOrWhiteSpace(options.Value.SiloOutboundAddress))
        {
            var local = new IPEndPoint(IPAddress.Parse(options.Value.SiloOutboundAddress), 0);
            handler.ConnectCallback = (context, cancellationToken) => ConnectFromAsync(local, context.DnsEndPoint, cancellationToken);
        }

        _http = new HttpClient(handler)
        {
            DefaultRequestVersion = HttpVersion.Version20,
            DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact,

            // Each caller bounds its own request with a token; the client-wide timeout is only a backstop.
            Timeout = Timeout.InfiniteTimeSpan,
        };
    }

    /// <summary>Sends <paramref name="request"/> (with a relative URI) to <paramref name="target"/>'s silo endpoint.</summary>
    public Task<HttpResponseMessage> SendAsync(SiloAddress target, HttpRequestMessage request, SiloAddress? self, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(target);
        ArgumentNullException.ThrowIfNull(request);
        request.RequestUri = new Uri(new Uri(target.Endpoint), request.RequestUri!);
        request.Version = HttpVersion.Version20;
        request.VersionPolicy = HttpVersionPolicy.RequestVersionExact;
        if (_secret is not null)
        {
            request.Headers.TryAddWithoutValidation(SecretHeader, _secret);
        }

        if (self is not null)
        {
            request.Headers.TryAddWithoutValidation(CallerHeader, self.ToString());
        }

        return _http.SendAsync(request, HttpCompletionOption.ResponseContentRead, cancellationToken);
    }

    private static async ValueTask<Stream> ConnectFromAsync(IPEndPoint local, DnsEndPoint target, CancellationToken cancellationToken)
    {
        var socket = new Socket(local.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            socket.Bind(local);
            await socket.ConnectAsync(new DnsEndPoint(target.Host, target.Port, local.AddressFamily), cancellationToken).ConfigureAwait(false);
            return new NetworkStream(socket, ownsSocket: true);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    public void Dispose() => _http.Dispose();
}

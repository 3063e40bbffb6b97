using System.Net;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using OrleansMeta.Runtime.Cluster;

namespace OrleansMeta.Silo.Hosting;

/// <summary>
/// Kestrel endpoints of a clustered silo: the public URLs (<c>--urls</c>, HTTP/1.1 and HTTP/2) and the silo-to-silo
/// endpoint (cleartext HTTP/2 only: with HTTP/1.1 also enabled, cleartext connections could not use HTTP/2 at all), on
/// <c>Meta:Cluster:SiloListenEndpoint</c> when set, otherwise on the advertised <c>Meta:Cluster:SiloEndpoint</c>.
/// Both are configured in code because an endpoint configured in code makes Kestrel ignore <c>--urls</c>.
/// </summary>
internal static class SiloListeners
{
    /// <summary>The public URLs as configured (<c>--urls</c>, <c>ASPNETCORE_URLS</c>, appsettings <c>Urls</c>).</summary>
    public static string PublicUrls(IConfiguration configuration)
        => configuration["urls"] ?? configuration["ASPNETCORE_URLS"] ?? "http://127.0.0.1:5080";

    public static void Configure(KestrelServerOptions kestrel, string publicUrls, IConfiguration configuration, bool listenForSilos)
    {
        // Public clients speak HTTP/1.1 in cleartext (HTTP/2 to browsers and proxies needs TLS, terminated in front).
        foreach (var url in publicUrls.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            Listen(kestrel, url, HttpProtocols.Http1);
        }

        if (listenForSilos)
        {
            // Kestrel reads its options before the settings are validated, so the endpoint is read from configuration
            // here; an unusable one is reported by ClusterOptionsValidator with every other problem.
            var cluster = new ClusterOptions();
            configuration.GetSection(ClusterOptions.SectionName).Bind(cluster);
            Listen(kestrel, cluster.EffectiveSiloListenEndpoint(), HttpProtocols.Http2);
        }
    }

    /// <summary>Every problem with the public listen URLs in <paramref name="configuration"/>, as sentences (checked with
    /// the other settings at start, so that all problems are reported together). The silo endpoints are checked with
    /// the other cluster settings (<see cref="ClusterOptionsValidator"/>).</summary>
    public static IEnumerable<string> Problems(IConfiguration configuration)
    {
        foreach (var url in PublicUrls(configuration).Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (Parse(url) is null)
            {
                yield return NotHttp("--urls", url);
            }
        }
    }

    private static string NotHttp(string setting, string url)
        => $"{setting} value '{url}' is not an http URL such as http://127.0.0.1:5080 (TLS is terminated in front of the silo).";

    private static Uri? Parse(string url)
    {
        // "+", "*" and "[::]" are wildcards Uri cannot parse as hosts; treat them as "any address".
        var normalized = url.Replace("://+", "://0.0.0.0", StringComparison.Ordinal).Replace("://*", "://0.0.0.0", StringComparison.Ordinal);
        return Uri.TryCreate(normalized, UriKind.Absolute, out var uri) && uri.Scheme == Uri.UriSchemeHttp ? uri : null;
    }

    private static void Listen(KestrelServerOptions kestrel, string url, HttpProtocols protocols)
    {
        if (Parse(url) is not { } uri)
        {
            // Kestrel reads its options while the app is built, before the settings are validated; an unusable URL is
            // left for SiloOptionsValidator to report with every other problem (the silo never starts with it).
            return;
        }

        Action<ListenOptions> configure = o => o.Protocols = protocols;
        if (uri.Host is "localhost")
        {
            kestrel.ListenLocalhost(uri.Port, configure);
        }
        else if (uri.Host is "0.0.0.0" or "[::]")
        {
            kestrel.ListenAnyIP(uri.Port, configure);
        }
        else if (IPAddress.TryParse(uri.Host.Trim('[', ']'), out var address))
        {
            kestrel.Listen(address, uri.Port, configure);
        }
        else
        {
            // A host name (e.g. the pod's DNS name): listen everywhere on that port.
            kestrel.ListenAnyIP(uri.Port, configure);
        }
    }
}

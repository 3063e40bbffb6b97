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

    /// <summary>
    /// The URL clients reach this silo at: <paramref name="configured"/> (<c>Meta:AdvertisedUrl</c>) when set, otherwise
    /// the first public URL. Null with a sentence saying what to set when it cannot serve (not an absolute http(s) URL,
    /// or a wildcard host that says nothing about where the silo is); null without one when the public URL it would
    /// come from is itself unusable (<see cref="Problems"/> reports that).
    /// </summary>
    public static (Uri? Url, string? Problem) AdvertisedUrl(string? configured, IConfiguration configuration)
    {
        const string Example = "for example --Meta:AdvertisedUrl=http://10.0.0.5:5080 (in Kubernetes, the pod's IP or a per-pod DNS name)";
        if (string.IsNullOrWhiteSpace(configured))
        {
            var first = PublicUrls(configuration).Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).FirstOrDefault();
            if (first is null || Parse(first) is not { } uri)
            {
                return (null, null);
            }

            return IsWildcard(first, uri)
                ? (null, $"The first --urls value '{first}' listens on every address, so it cannot tell clients where this silo is: " +
                         $"set Meta:AdvertisedUrl to the URL clients reach this silo's API at, {Example}.")
                : (uri, null);
        }

        if (!Uri.TryCreate(configured, UriKind.Absolute, out var advertised) || advertised.Scheme is not ("http" or "https")
            || advertised.Query.Length > 0 || advertised.Fragment.Length > 0 || IsWildcard(configured, advertised))
        {
            return (null, $"Meta:AdvertisedUrl '{configured}' is not a URL clients can reach: give the absolute http or https URL of this silo's API, " +
                          $"with a host that is not a wildcard (0.0.0.0, [::], +, *) and no query, {Example}.");
        }

        return (advertised, null);
    }

    private static bool IsWildcard(string raw, Uri uri)
        => raw.Contains("://+", StringComparison.Ordinal) || raw.Contains("://*", StringComparison.Ordinal) || uri.Host is "0.0.0.0" or "[::]";

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

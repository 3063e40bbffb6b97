using System.Net;
using Microsoft.Extensions.Options;

namespace OrleansMeta.Runtime.Cluster;

/// <summary>How a silo reaches and authenticates to its peers.</summary>
public sealed class ClusterOptions
{
    public const string SectionName = "Meta:Cluster";

    /// <summary>The silo-to-silo endpoint this silo advertises in membership (cleartext HTTP/2, separate from the public
    /// API), e.g. <c>http://10.0.0.5:11111</c>: the address peers use to reach it. It also listens there unless
    /// <see cref="SiloListenEndpoint"/> says otherwise. Default: <c>http://127.0.0.1:11111</c>.</summary>
    public string SiloEndpoint { get; set; } = "http://127.0.0.1:11111";

    /// <summary>Where this silo listens for its peers when that is not <see cref="SiloEndpoint"/>: behind NAT or a port
    /// mapping (a container's published port, a Kubernetes Service, a proxy) peers connect to the advertised endpoint
    /// and the traffic arrives here. A wildcard host (<c>http://0.0.0.0:11111</c>) listens on every address.
    /// Default: none (listen on <see cref="SiloEndpoint"/>).</summary>
    public string? SiloListenEndpoint { get; set; }

    /// <summary>The local IP address this silo's connections to its peers leave from, on a host with several addresses
    /// (peers and firewalls then see this one). Default: none (the operating system chooses).</summary>
    public string? SiloOutboundAddress { get; set; }

    /// <summary>A shared secret every silo of the cluster presents on silo-to-silo calls; requests without it are
    /// refused. Required when the cluster has PostgreSQL membership. Default: none.</summary>
    public string? ClusterSecret { get; set; }

    /// <summary>The URL clients reach this silo's public API at, recorded in its membership row so that any silo can tell
    /// a client which silo owns a grain it calls often (a consumer group's coordinator). The silo host sets it from
    /// <c>Meta:AdvertisedUrl</c> (or its first public URL) and validates it. Default: none (nothing is recorded, and
    /// clients reach this silo's grains through any silo).</summary>
    public string? ClientUrl { get; set; }

    /// <summary>A name for logs and the dashboard. Default: the machine name.</summary>
    public string SiloName { get; set; } = Environment.MachineName;

    /// <summary>The endpoint this silo listens on for its peers: <see cref="SiloListenEndpoint"/> when set, otherwise
    /// <see cref="SiloEndpoint"/>.</summary>
    public string EffectiveSiloListenEndpoint() => string.IsNullOrWhiteSpace(SiloListenEndpoint) ? SiloEndpoint : SiloListenEndpoint;

    /// <summary>A listen endpoint as a URI, reading the wildcard hosts <c>+</c> and <c>*</c> (which <see cref="Uri"/>
    /// cannot parse) as <c>0.0.0.0</c>; <c>null</c> when it is not an http URI with a port and no path.</summary>
    public static Uri? ParseListenEndpoint(string? endpoint)
    {
        var normalized = endpoint?.Replace("://+", "://0.0.0.0", StringComparison.Ordinal).Replace("://*", "://0.0.0.0", StringComparison.Ordinal);
        return Uri.TryCreate(normalized, UriKind.Absolute, out var uri) && uri.Scheme == Uri.UriSchemeHttp && uri.Port > 0 && uri.AbsolutePath == "/"
            ? uri
            : null;
    }
}

/// <summary>Reports every problem with <see cref="ClusterOptions"/> at start-up.</summary>
public sealed class ClusterOptionsValidator : IValidateOptions<ClusterOptions>
{
    public ValidateOptionsResult Validate(string? name, ClusterOptions options)
    {
        var problems = new List<string>();
        if (!Uri.TryCreate(options.SiloEndpoint, UriKind.Absolute, out var endpoint) || endpoint.Scheme != Uri.UriSchemeHttp || endpoint.Port <= 0
            || endpoint.AbsolutePath != "/")
        {
            problems.Add($"{ClusterOptions.SectionName}:SiloEndpoint '{options.SiloEndpoint}' must be an http URI with a host and an explicit port and no path, " +
                         "for example http://10.0.0.5:11111 (the address peers use to reach this silo).");
        }
        else if (endpoint.Host is "0.0.0.0" or "[::]" or "*" or "+")
        {
            problems.Add($"{ClusterOptions.SectionName}:SiloEndpoint '{options.SiloEndpoint}' is a wildcard; advertise an address peers can reach, such as the pod IP.");
        }

        if (!string.IsNullOrWhiteSpace(options.SiloListenEndpoint) && ClusterOptions.ParseListenEndpoint(options.SiloListenEndpoint) is null)
        {
            problems.Add($"{ClusterOptions.SectionName}:SiloListenEndpoint '{options.SiloListenEndpoint}' must be an http URI with a host and an explicit port and no path, " +
                         "for example http://0.0.0.0:11111 (where this silo listens for its peers when they reach it through another address).");
        }

        if (!string.IsNullOrWhiteSpace(options.SiloOutboundAddress)
            && (!IPAddress.TryParse(options.SiloOutboundAddress, out var outbound) || outbound.Equals(IPAddress.Any) || outbound.Equals(IPAddress.IPv6Any)))
        {
            problems.Add($"{ClusterOptions.SectionName}:SiloOutboundAddress '{options.SiloOutboundAddress}' must be one IP address of this host, for example 10.0.0.5 " +
                         "(the address connections to peers leave from), or left unset.");
        }

        if (options.ClusterSecret is { Length: > 0 and < 16 })
        {
            problems.Add($"{ClusterOptions.SectionName}:ClusterSecret is shorter than 16 characters; use a long random value (for example `openssl rand -hex 32`).");
        }

        if (string.IsNullOrWhiteSpace(options.SiloName))
        {
            problems.Add($"{ClusterOptions.SectionName}:SiloName must not be empty.");
        }

        return problems.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(problems);
    }
}

using Microsoft.Extensions.Options;

namespace OrleansMeta.Runtime.Cluster;

/// <summary>How a silo reaches and authenticates to its peers.</summary>
public sealed class ClusterOptions
{
    public const string SectionName = "Meta:Cluster";

    /// <summary>The silo-to-silo endpoint this silo listens on (cleartext HTTP/2, separate from the public API) and
    /// advertises in membership, e.g. <c>http://10.0.0.5:11111</c>. Default: <c>http://127.0.0.1:11111</c>.</summary>
    public string SiloEndpoint { get; set; } = "http://127.0.0.1:11111";

    /// <summary>A shared secret every silo of the cluster presents on silo-to-silo calls; requests without it are
    /// refused. Required when the cluster has PostgreSQL membership. Default: none.</summary>
    public string? ClusterSecret { get; set; }

    /// <summary>A name for logs and the dashboard. Default: the machine name.</summary>
    public string SiloName { get; set; } = Environment.MachineName;
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

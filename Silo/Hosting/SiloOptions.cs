using System.Text.RegularExpressions;
using Microsoft.Extensions.Options;

namespace OrleansMeta.Silo.Hosting;

/// <summary>Who this silo is and which cluster it belongs to.</summary>
public sealed partial class SiloOptions
{
    public const string SectionName = "Meta";

    /// <summary>The cluster this silo joins; silos and stored state of different clusters never mix, even in one
    /// database. Default: <c>dev</c>.</summary>
    public string ClusterId { get; set; } = "dev";

    /// <summary>The URL clients reach this silo's public API at, e.g. <c>http://10.0.0.5:5080</c> (an absolute http or
    /// https URL; a path prefix is kept, for a silo behind a proxy). It is recorded in the cluster's membership so that
    /// any silo can tell a client which silo coordinates a consumer group (<c>GET /v1/groups/{groupId}/coordinator</c>)
    /// and the client can send that group's calls there. It must name this silo, not a load balancer in front of
    /// several. Default: the first of the public URLs (<c>--urls</c>), which must then not be a wildcard such as
    /// <c>http://0.0.0.0:5080</c>.</summary>
    public string? AdvertisedUrl { get; set; }

    [GeneratedRegex("^[a-zA-Z0-9][a-zA-Z0-9._-]{0,62}$")]
    internal static partial Regex ClusterIdPattern();
}

/// <summary>Reports every problem with <see cref="SiloOptions"/> and the listen URLs at start-up.</summary>
public sealed class SiloOptionsValidator(IConfiguration configuration) : IValidateOptions<SiloOptions>
{
    public ValidateOptionsResult Validate(string? name, SiloOptions options)
    {
        var problems = new List<string>();
        if (string.IsNullOrEmpty(options.ClusterId) || !SiloOptions.ClusterIdPattern().IsMatch(options.ClusterId))
        {
            problems.Add(
                $"Meta:ClusterId '{options.ClusterId}' is not valid: use 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit " +
                "(for example --Meta:ClusterId=prod-eu).");
        }

        problems.AddRange(SiloListeners.Problems(configuration));
        if (SiloListeners.AdvertisedUrl(options.AdvertisedUrl, configuration).Problem is { } advertised)
        {
            problems.Add(advertised);
        }

        return problems.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(problems);
    }
}

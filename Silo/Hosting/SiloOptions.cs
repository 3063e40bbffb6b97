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
        return problems.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(problems);
    }
}

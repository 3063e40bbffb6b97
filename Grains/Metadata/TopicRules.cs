using System.Globalization;
using OrleansMeta.Client.Models;
using OrleansMeta.GrainInterfaces;

namespace OrleansMeta.Grains.Metadata;

/// <summary>Kafka's rules for topic names and the topic configs this service accepts, with their validation.</summary>
public static class TopicRules
{
    /// <summary>Kafka's limit: a topic name's folder name (name + "-" + partition) must fit a file name.</summary>
    public const int MaxNameLength = 249;

    /// <summary>Largest partition count accepted for one topic.</summary>
    public const int MaxPartitions = 100_000;

    private static readonly Dictionary<string, Func<string, string?>> s_configs = new(StringComparer.Ordinal)
    {
        ["retention.ms"] = v => Long(v, min: -1),
        ["retention.bytes"] = v => Long(v, min: -1),
        ["segment.bytes"] = v => Long(v, min: 14),
        ["segment.ms"] = v => Long(v, min: 1),
        ["delete.retention.ms"] = v => Long(v, min: 0),
        ["min.compaction.lag.ms"] = v => Long(v, min: 0),
        ["max.message.bytes"] = v => Long(v, min: 0),
        ["min.insync.replicas"] = v => Long(v, min: 1),
        ["cleanup.policy"] = v => OneOf(v, "delete", "compact", "delete,compact", "compact,delete"),
        ["unclean.leader.election.enable"] = v => OneOf(v, "true", "false"),
        ["compression.type"] = v => OneOf(v, "uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"),
        ["message.timestamp.type"] = v => OneOf(v, "CreateTime", "LogAppendTime"),
    };

    public static IEnumerable<string> KnownConfigs => s_configs.Keys.Order(StringComparer.Ordinal);

    public static void ValidateName(string? name)
    {
        string? problem = name switch
        {
            null or "" => "a topic name must not be empty",
            "." or ".." => $"'{name}' is not allowed as a topic name",
            { Length: > MaxNameLength } => $"the topic name is {name.Length} characters long; at most {MaxNameLength} are allowed",
            _ when name.Any(c => !(char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-')) =>
                $"'{name}' contains characters other than ASCII letters, digits, '.', '_' and '-'",
            _ => null,
        };
        if (problem is not null)
        {
            throw MetaException.Invalid(ErrorCodes.InvalidTopic, $"Invalid topic name: {problem}.");
        }
    }

    /// <summary>Validates every key and value, listing all problems; returns the configs to store.</summary>
    public static Dictionary<string, string> ValidateConfigs(IReadOnlyDictionary<string, string>? configs, short replicationFactor)
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        var problems = new List<string>();
        foreach (var (key, value) in configs ?? new Dictionary<string, string>())
        {
            if (!s_configs.TryGetValue(key, out var check))
            {
                problems.Add($"'{key}' is not a topic config this service knows (known: {string.Join(", ", KnownConfigs)})");
            }
            else if (value is null || check(value) is { } problem)
            {
                problems.Add($"'{key}' = '{value}': {check(value ?? "") ?? "a value is required"}");
            }
            else
            {
                result[key] = value;
            }
        }

        if (result.TryGetValue("min.insync.replicas", out var minIsr) && long.Parse(minIsr, CultureInfo.InvariantCulture) > replicationFactor)
        {
            problems.Add($"'min.insync.replicas' = {minIsr} exceeds the replication factor {replicationFactor}; no write could ever succeed");
        }

        if (problems.Count > 0)
        {
            throw MetaException.Invalid(ErrorCodes.InvalidConfig, $"Invalid topic configs: {string.Join("; ", problems)}.");
        }

        return result;
    }

    public static bool AllowsUncleanElection(TopicRecord topic)
        => topic.Configs.TryGetValue("unclean.leader.election.enable", out var value) && value == "true";

    private static string? Long(string value, long min)
        => long.TryParse(value, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var n) && n >= min
            ? null
            : $"expected a whole number of at least {min}";

    private static string? OneOf(string value, params string[] allowed)
        => allowed.Contains(value, StringComparer.Ordinal) ? null : $"expected one of {string.Join(", ", allowed)}";
}

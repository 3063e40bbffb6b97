using System.Globalization;
using OrleansMeta.Contracts;
using OrleansMeta.GrainInterfaces;

namespace OrleansMeta.Grains.Metadata;

/// <summary>Kafka's rules for topic names and the topic configs this service accepts, with their validation.</summary>
public static class TopicRules
{
    /// <summary>Kafka's limit: a topic name's folder name (name + "-" + partition) must fit a file name.</summary>
    public const int MaxNameLength = 249;

    /// <summary>Largest partition count accepted for one topic.</summary>
    public const int MaxPartitions = 100_000;

    /// <summary>The topic configs this service accepts: a check for a value, and Kafka's default (what a topic without
    /// the key behaves as; this service has no broker-level overrides, so the default is always Kafka's own).</summary>
    private static readonly Dictionary<string, (Func<string, string?> Check, string Default)> s_configs = new(StringComparer.Ordinal)
    {
        ["retention.ms"] = (v => Long(v, min: -1), "604800000"),
        ["retention.bytes"] = (v => Long(v, min: -1), "-1"),
        ["segment.bytes"] = (v => Long(v, min: 14), "1073741824"),
        ["segment.ms"] = (v => Long(v, min: 1), "604800000"),
        ["delete.retention.ms"] = (v => Long(v, min: 0), "86400000"),
        ["min.compaction.lag.ms"] = (v => Long(v, min: 0), "0"),
        ["max.message.bytes"] = (v => Long(v, min: 0), "1048588"),
        ["min.insync.replicas"] = (v => Long(v, min: 1), "1"),
        ["cleanup.policy"] = (v => OneOf(v, "delete", "compact", "delete,compact", "compact,delete"), "delete"),
        ["unclean.leader.election.enable"] = (v => OneOf(v, "true", "false"), "false"),
        ["compression.type"] = (v => OneOf(v, "uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"), "producer"),
        ["message.timestamp.type"] = (v => OneOf(v, "CreateTime", "LogAppendTime"), "CreateTime"),
    };

    /// <summary>Kafka's internal topics (Topic.isInternal): created by the cluster itself, never by users.</summary>
    private static readonly string[] s_internal = ["__consumer_offsets", "__transaction_state", "__share_group_state"];

    public static IEnumerable<string> KnownConfigs => s_configs.Keys.Order(StringComparer.Ordinal);

    /// <summary>Kafka's default for a known config.</summary>
    public static string DefaultOf(string key) => s_configs[key].Default;

    /// <summary>Whether <paramref name="name"/> is one of Kafka's internal topics.</summary>
    public static bool IsInternal(string name) => s_internal.Contains(name, StringComparer.Ordinal);

    /// <summary>
    /// The name with '.' replaced by '_' (Kafka's Topic.unifyCollisionChars): metric names cannot tell the two apart,
    /// so Kafka refuses a topic whose unified name equals an existing topic's. Topic grains are keyed by it, so two
    /// colliding names reach one grain, which refuses the second whatever the timing.
    /// </summary>
    public static string CollisionKey(string name) => TopicKeys.For(name);

    /// <summary>
    /// A name a user may create a topic under: valid, and not in the '__' namespace of internal topics. Kafka's
    /// brokers create their internal topics themselves and tools only warn about '__' names; this service reserves the
    /// whole namespace, because it will create and own such topics (consumer offsets, transactions) itself.
    /// </summary>
    public static void ValidateNewName(string? name)
    {
        ValidateName(name);
        if (name!.StartsWith("__", StringComparison.Ordinal))
        {
            throw MetaException.Invalid(ErrorCodes.InvalidTopic, IsInternal(name)
                ? $"'{name}' is an internal topic; the cluster creates it, users cannot."
                : $"Topic names starting with '__' are reserved for internal topics such as __consumer_offsets; '{name}' cannot be created.");
        }
    }

    /// <summary>Refuses a name Kafka would refuse; <paramref name="field"/>, when given, names where it came from.</summary>
    public static void ValidateName(string? name, string? field = null)
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
            throw MetaException.Invalid(ErrorCodes.InvalidTopic, field is null ? $"Invalid topic name: {problem}." : $"{field}: invalid topic name: {problem}.");
        }
    }

    /// <summary>Validates every key and value, listing all problems; returns the configs to store.</summary>
    public static Dictionary<string, string> ValidateConfigs(IReadOnlyDictionary<string, string>? configs, short replicationFactor)
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        var problems = new List<string>();
        foreach (var (key, value) in configs ?? new Dictionary<string, string>())
        {
            if (!s_configs.TryGetValue(key, out var config))
            {
                problems.Add($"'{key}' is not a topic config this service knows (known: {string.Join(", ", KnownConfigs)})");
            }
            else if (value is null || config.Check(value) is not null)
            {
                problems.Add($"'{key}' = '{value}': {(value is null ? "a value is required" : config.Check(value))}");
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

using System.Text.RegularExpressions;
using OrleansMeta.Contracts;
using OrleansMeta.GrainInterfaces;

namespace OrleansMeta.Grains.Groups;

/// <summary>What makes a group id, an instance id or a subscription valid, with errors that name the field.</summary>
public static class GroupRules
{
    /// <summary>Like topic names: Kafka's legal characters, at most 249 of them.</summary>
    public const int MaxIdLength = 249;

    /// <summary>A member id is chosen by the consumer (a UUID in Kafka's client); long ones are refused.</summary>
    public const int MaxMemberIdLength = 100;

    /// <summary>Subscriptions a member may name.</summary>
    public const int MaxSubscribedTopics = 10_000;

    /// <summary>The longest regular expression accepted.</summary>
    public const int MaxRegexLength = 1_000;

    public static void ValidateGroupId(string? groupId) => ValidateId(groupId, "group id", ErrorCodes.InvalidGroupId);

    public static void ValidateInstanceId(string? instanceId) => ValidateId(instanceId, "groupInstanceId", ErrorCodes.InvalidRequest);

    public static void ValidateMemberId(string? memberId)
    {
        string? problem = memberId switch
        {
            null or "" => "memberId must not be empty: a consumer chooses one (a new UUID when its process starts) and keeps it",
            { Length: > MaxMemberIdLength } => $"memberId is {memberId.Length} characters long; at most {MaxMemberIdLength} are allowed",
            _ when memberId.Any(char.IsControl) => "memberId must not contain control characters",
            _ => null,
        };
        if (problem is not null)
        {
            throw MetaException.Invalid(ErrorCodes.InvalidRequest, $"Invalid heartbeat: {problem}.");
        }
    }

    /// <summary>Compiles a subscription pattern (whole topic names must match), refusing what does not parse.</summary>
    public static Regex CompileSubscription(string pattern)
    {
        if (pattern.Length == 0 || pattern.Length > MaxRegexLength)
        {
            throw MetaException.Invalid(ErrorCodes.InvalidRegularExpression,
                $"subscribedTopicRegex must be 1 to {MaxRegexLength} characters long; got {pattern.Length}.");
        }

        try
        {
            // Linear-time matching, so no pattern can stall a silo (Kafka uses RE2/J for the same reason).
            return new Regex($"^(?:{pattern})$", RegexOptions.NonBacktracking | RegexOptions.CultureInvariant, TimeSpan.FromSeconds(1));
        }
        catch (Exception exception) when (exception is ArgumentException or NotSupportedException)
        {
            throw MetaException.Invalid(ErrorCodes.InvalidRegularExpression,
                $"subscribedTopicRegex '{pattern}' is not a valid regular expression: {exception.Message}");
        }
    }

    private static void ValidateId(string? id, string what, string code)
    {
        string? problem = id switch
        {
            null or "" => $"the {what} must not be empty",
            { Length: > MaxIdLength } => $"the {what} is {id.Length} characters long; at most {MaxIdLength} are allowed",
            _ when id.Any(c => !(char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-')) =>
                $"the {what} '{id}' contains characters other than ASCII letters, digits, '.', '_' and '-'",
            _ => null,
        };
        if (problem is not null)
        {
            throw MetaException.Invalid(code, $"Invalid {what}: {problem}.");
        }
    }
}

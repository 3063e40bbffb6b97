using System.Collections;
using System.Collections.Concurrent;
using System.Reflection;
using System.Text.Json;
using OrleansMeta.Contracts;
using OrleansMeta.GrainInterfaces;

namespace OrleansMeta.Silo.Api;

/// <summary>
/// One pass over every request body before the endpoint runs: a null where the wire model's nullable annotations say
/// a value is required (a field, an array element such as <c>assignment: [null]</c>, a config value) is refused with
/// every such place named by its JSON path. The JSON reader cannot do this itself: it does not enforce annotations on
/// collection elements, and nulls that slip through crash deep inside a grain.
/// </summary>
internal static class RequestShape
{
    private static readonly ConcurrentDictionary<Type, Field[]> s_fields = new();

    /// <summary>Checks the arguments of endpoints whose parameters include a wire model.</summary>
    public static EndpointFilterDelegate Filter(EndpointFilterFactoryContext context, EndpointFilterDelegate next)
    {
        var bodies = context.MethodInfo.GetParameters()
            .Select((parameter, index) => (parameter, index))
            .Where(p => IsModel(p.parameter.ParameterType))
            .Select(p => p.index)
            .ToArray();
        if (bodies.Length == 0)
        {
            return next;
        }

        return invocation =>
        {
            // A first pass only looks: a valid body (nearly every one) builds no JSON path and allocates nothing.
            foreach (var index in bodies)
            {
                if (invocation.Arguments[index] is { } body && !Walk(body, nullable: true, generic: null, path: null, problems: null))
                {
                    throw Refusal(invocation, bodies);
                }
            }

            return next(invocation);
        };
    }

    /// <summary>The second pass, for a body the first found a problem in: every place, named by its JSON path.</summary>
    private static MetaException Refusal(EndpointFilterInvocationContext invocation, int[] bodies)
    {
        var problems = new List<string>();
        foreach (var index in bodies)
        {
            if (invocation.Arguments[index] is { } body)
            {
                Walk(body, nullable: true, generic: null, "$", problems);
            }
        }

        return MetaException.Invalid(ErrorCodes.InvalidRequest, $"The body has nulls where values are required: {string.Join("; ", problems)}.");
    }

    private static bool IsModel(Type type) => type.Namespace == typeof(CreateTopicRequest).Namespace && type.IsClass && type != typeof(string);

    /// <summary>
    /// Whether <paramref name="value"/> has no null where one is not allowed. With <paramref name="problems"/> null it
    /// stops at the first one and builds no path; otherwise it adds every one, named by its path, to the list.
    /// </summary>
    private static bool Walk(object? value, bool nullable, NullabilityInfo? generic, string? path, List<string>? problems)
    {
        if (value is null)
        {
            if (!nullable)
            {
                problems?.Add($"{path} must not be null");
                return false;
            }

            return true;
        }

        var complete = true;
        switch (value)
        {
            case string:
                return true;
            case IDictionary dictionary:
                var valueInfo = generic?.GenericTypeArguments is { Length: 2 } kv ? kv[1] : null;
                foreach (DictionaryEntry entry in dictionary)
                {
                    complete &= Walk(entry.Value, valueInfo is null || valueInfo.ReadState != NullabilityState.NotNull, valueInfo,
                        problems is null ? null : $"{path}['{entry.Key}']", problems);
                    if (!complete && problems is null)
                    {
                        return false;
                    }
                }

                return complete;
            case IEnumerable items:
                var element = generic?.ElementType ?? (generic?.GenericTypeArguments is { Length: 1 } one ? one[0] : null);
                if (element?.Type is { IsValueType: true } && Nullable.GetUnderlyingType(element.Type) is null)
                {
                    // A list of numbers cannot hold a null (the reader refused it already); a large one costs nothing here.
                    return true;
                }

                var index = 0;
                foreach (var item in items)
                {
                    complete &= Walk(item, element is null || element.ReadState != NullabilityState.NotNull, element,
                        problems is null ? null : $"{path}[{index}]", problems);
                    if (!complete && problems is null)
                    {
                        return false;
                    }

                    index++;
                }

                return complete;
        }

        if (!IsModel(value.GetType()))
        {
            return true;
        }

        foreach (var field in s_fields.GetOrAdd(value.GetType(), Fields))
        {
            complete &= Walk(field.Property.GetValue(value), field.Info.ReadState != NullabilityState.NotNull, field.Info,
                problems is null ? null : $"{path}.{field.Name}", problems);
            if (!complete && problems is null)
            {
                return false;
            }
        }

        return complete;
    }

    private static Field[] Fields(Type type)
    {
        // NullabilityInfoContext is not thread-safe; each type's fields are read once and cached.
        var context = new NullabilityInfoContext();
        return [.. type.GetProperties(BindingFlags.Public | BindingFlags.Instance)
            // A value type holds no null the reader let through and no model to walk into; reading one would box it.
            .Where(p => p.GetIndexParameters().Length == 0 && !p.PropertyType.IsValueType)
            .Select(p => new Field(p, JsonNamingPolicy.CamelCase.ConvertName(p.Name), context.Create(p)))];
    }

    private sealed record Field(PropertyInfo Property, string Name, NullabilityInfo Info);
}

using System.Linq.Expressions;
using System.Reflection;

namespace OrleansMeta.Runtime.Calls;

/// <summary>
/// One method of a grain interface: its stable name (used on the wire), its parameter and result types, whether it is
/// read-only, and a compiled invoker that calls it on a grain instance.
/// </summary>
public sealed class GrainMethod
{
    private readonly Func<object, object?[], Task<object?>> _invoke;
    private readonly Func<Task<object?>, object> _adaptResult;

    private GrainMethod(MethodInfo method, string name, Type? resultType, bool returnsValueTask, int cancellationTokenIndex)
    {
        Method = method;
        Name = name;
        ResultType = resultType;
        ParameterTypes = method.GetParameters().Select(p => p.ParameterType).ToArray();
        IsReadOnly = method.GetCustomAttribute<ReadOnlyAttribute>() is not null;
        CancellationTokenIndex = cancellationTokenIndex;
        _invoke = CompileInvoker(method, resultType);
        _adaptResult = CompileResultAdapter(resultType, returnsValueTask);
    }

    /// <summary>The interface method.</summary>
    public MethodInfo Method { get; }

    /// <summary>Stable wire name: <c>Name(ParamType,ParamType)</c>.</summary>
    public string Name { get; }

    public Type[] ParameterTypes { get; }

    /// <summary>The type inside the returned task, or <c>null</c> for <see cref="Task"/> / <see cref="ValueTask"/>.</summary>
    public Type? ResultType { get; }

    public bool IsReadOnly { get; }

    /// <summary>Index of a <see cref="CancellationToken"/> parameter, or -1. The runtime replaces it with a token that is
    /// cancelled when the caller cancels or the call times out.</summary>
    public int CancellationTokenIndex { get; }

    /// <summary>Calls the method on <paramref name="grain"/>; the result is boxed (or <c>null</c> for void tasks).</summary>
    public Task<object?> InvokeAsync(object grain, object?[] arguments) => _invoke(grain, arguments);

    /// <summary>Turns the runtime's boxed result task into the task type the interface method returns.</summary>
    public object AdaptResult(Task<object?> result) => _adaptResult(result);

    internal static GrainMethod Create(MethodInfo method)
    {
        var returnType = method.ReturnType;
        Type? resultType;
        bool returnsValueTask;
        if (returnType == typeof(Task))
        {
            (resultType, returnsValueTask) = (null, false);
        }
        else if (returnType == typeof(ValueTask))
        {
            (resultType, returnsValueTask) = (null, true);
        }
        else if (returnType.IsGenericType && returnType.GetGenericTypeDefinition() == typeof(Task<>))
        {
            (resultType, returnsValueTask) = (returnType.GetGenericArguments()[0], false);
        }
        else if (returnType.IsGenericType && returnType.GetGenericTypeDefinition() == typeof(ValueTask<>))
        {
            (resultType, returnsValueTask) = (returnType.GetGenericArguments()[0], true);
        }
        else
        {
            throw new InvalidOperationException(
                $"Grain method {method.DeclaringType?.Name}.{method.Name} returns {returnType.Name}; grain methods must return " +
                "Task, Task<T>, ValueTask or ValueTask<T> because every call is asynchronous.");
        }

        var parameters = method.GetParameters();
        if (parameters.FirstOrDefault(p => p.ParameterType.IsByRef) is { } byRef)
        {
            throw new InvalidOperationException(
                $"Grain method {method.DeclaringType?.Name}.{method.Name} has ref/out parameter '{byRef.Name}'; calls may cross silos, so pass values and return results instead.");
        }

        var tokenIndex = Array.FindIndex(parameters, p => p.ParameterType == typeof(CancellationToken));
        var name = $"{method.Name}({string.Join(',', parameters.Select(p => TypeName(p.ParameterType)))})";
        return new GrainMethod(method, name, resultType, returnsValueTask, tokenIndex);
    }

    private static string TypeName(Type type) => type.IsGenericType
        ? $"{type.Name[..type.Name.IndexOf('`', StringComparison.Ordinal)]}<{string.Join(',', type.GetGenericArguments().Select(TypeName))}>"
        : type.Name;

    private static Func<object, object?[], Task<object?>> CompileInvoker(MethodInfo method, Type? resultType)
    {
        var grain = Expression.Parameter(typeof(object), "grain");
        var args = Expression.Parameter(typeof(object?[]), "args");
        var call = Expression.Call(
            Expression.Convert(grain, method.DeclaringType!),
            method,
            method.GetParameters().Select((p, i) => Expression.Convert(Expression.ArrayIndex(args, Expression.Constant(i)), p.ParameterType)));

        var boxer = typeof(GrainMethod).GetMethod(
            resultType is null ? (method.ReturnType == typeof(Task) ? nameof(BoxTask) : nameof(BoxValueTask))
                : (method.ReturnType.GetGenericTypeDefinition() == typeof(Task<>) ? nameof(BoxTaskOf) : nameof(BoxValueTaskOf)),
            BindingFlags.NonPublic | BindingFlags.Static)!;
        if (resultType is not null)
        {
            boxer = boxer.MakeGenericMethod(resultType);
        }

        var body = Expression.Call(boxer, call);
        return Expression.Lambda<Func<object, object?[], Task<object?>>>(body, grain, args).Compile();
    }

    private static Func<Task<object?>, object> CompileResultAdapter(Type? resultType, bool returnsValueTask)
    {
        if (resultType is null)
        {
            return returnsValueTask ? static t => new ValueTask(t) : static t => (Task)t;
        }

        var adapter = typeof(GrainMethod)
            .GetMethod(returnsValueTask ? nameof(ToValueTaskOf) : nameof(ToTaskOf), BindingFlags.NonPublic | BindingFlags.Static)!
            .MakeGenericMethod(resultType);
        return adapter.CreateDelegate<Func<Task<object?>, object>>();
    }

    private static async Task<object?> BoxTask(Task task)
    {
        await task;
        return null;
    }

    private static async Task<object?> BoxValueTask(ValueTask task)
    {
        await task;
        return null;
    }

    private static async Task<object?> BoxTaskOf<T>(Task<T> task) => await task;

    private static async Task<object?> BoxValueTaskOf<T>(ValueTask<T> task) => await task;

    private static object ToTaskOf<T>(Task<object?> task) => CastAsync<T>(task);

    private static object ToValueTaskOf<T>(Task<object?> task) => new ValueTask<T>(CastAsync<T>(task));

    private static async Task<T> CastAsync<T>(Task<object?> task) => (T)(await task.ConfigureAwait(false))!;
}

/// <summary>The methods of one grain interface (including inherited ones) and its grain type name.</summary>
public sealed class GrainInterface
{
    private readonly Dictionary<MethodInfo, GrainMethod> _byMethod;
    private readonly Dictionary<string, GrainMethod> _byName;

    internal GrainInterface(Type interfaceType)
    {
        if (!interfaceType.IsInterface || !typeof(IGrainWithStringKey).IsAssignableFrom(interfaceType))
        {
            throw new InvalidOperationException($"{interfaceType.Name} is not a grain interface: it must be an interface deriving from IGrainWithStringKey.");
        }

        InterfaceType = interfaceType;
        GrainType = interfaceType.GetCustomAttributes(typeof(GrainTypeAttribute), inherit: false) is [GrainTypeAttribute named]
            ? named.Name
            : DefaultGrainType(interfaceType);
        var methods = new[] { interfaceType }.Concat(interfaceType.GetInterfaces())
            .SelectMany(i => i.GetMethods())
            .Select(GrainMethod.Create)
            .ToList();
        _byMethod = methods.ToDictionary(m => m.Method);
        _byName = new Dictionary<string, GrainMethod>(StringComparer.Ordinal);
        foreach (var method in methods)
        {
            if (!_byName.TryAdd(method.Name, method))
            {
                throw new InvalidOperationException($"Grain interface {interfaceType.Name} has two methods named {method.Name}; give them distinct names.");
            }
        }
    }

    public Type InterfaceType { get; }

    public string GrainType { get; }

    public GrainMethod this[MethodInfo method] => _byMethod[method];

    public bool TryGetMethod(string name, out GrainMethod method) => _byName.TryGetValue(name, out method!);

    /// <summary><c>IBrokerGrain</c> → <c>broker</c>, <c>IConsumerGroupGrain</c> → <c>consumer-group</c>.</summary>
    internal static string DefaultGrainType(Type interfaceType)
    {
        var name = interfaceType.Name;
        if (name.Length > 1 && name[0] == 'I' && char.IsUpper(name[1]))
        {
            name = name[1..];
        }

        if (name.EndsWith("Grain", StringComparison.Ordinal) && name.Length > "Grain".Length)
        {
            name = name[..^"Grain".Length];
        }

        var builder = new System.Text.StringBuilder(name.Length + 4);
        for (var i = 0; i < name.Length; i++)
        {
            if (char.IsUpper(name[i]) && i > 0)
            {
                builder.Append('-');
            }

            builder.Append(char.ToLowerInvariant(name[i]));
        }

        return builder.ToString();
    }
}

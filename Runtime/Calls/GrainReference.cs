using System.Collections.Concurrent;
using System.Reflection;

namespace OrleansMeta.Runtime.Calls;

/// <summary>
/// The object behind every grain reference: implements the grain interface (through <see cref="DispatchProxy"/>) and
/// turns each method call into a request for <see cref="GrainCallInvoker"/>.
/// </summary>
public class GrainReference : DispatchProxy
{
    private GrainInterface _interface = null!;
    private GrainCallInvoker _invoker = null!;

    /// <summary>The grain this reference addresses.</summary>
    public GrainId GrainId { get; private set; }

    /// <summary>A reference of the same generated class and state, to be initialized for another grain.</summary>
    internal GrainReference Copy() => (GrainReference)MemberwiseClone();

    internal void Initialize(GrainId grainId, GrainInterface grainInterface, GrainCallInvoker invoker)
    {
        GrainId = grainId;
        _interface = grainInterface;
        _invoker = invoker;
    }

    protected override object? Invoke(MethodInfo? targetMethod, object?[]? args)
    {
        ArgumentNullException.ThrowIfNull(targetMethod);
        var method = _interface[targetMethod];

        // The arguments array is owned by the proxy call, so the runtime may keep it (and replace a cancellation token).
        var result = _invoker.InvokeAsync(GrainId, _interface, method, args ?? []);
        return method.AdaptResult(result);
    }

    public override string ToString() => $"GrainReference({GrainId})";
}

/// <summary>Knows every registered grain interface and the grain class that implements it.</summary>
public sealed class GrainTypeRegistry
{
    private readonly ConcurrentDictionary<Type, GrainInterface> _interfaces = new();
    private readonly Dictionary<string, (GrainInterface Interface, Type GrainClass)> _byGrainType = new(StringComparer.Ordinal);

    /// <summary>Registers <paramref name="grainClass"/> as the implementation of <paramref name="interfaceType"/>.</summary>
    public void Register(Type interfaceType, Type grainClass)
    {
        if (!interfaceType.IsAssignableFrom(grainClass) || !typeof(Grain).IsAssignableFrom(grainClass) || grainClass.IsAbstract)
        {
            throw new InvalidOperationException($"{grainClass.Name} must be a concrete Grain that implements {interfaceType.Name}.");
        }

        var grainInterface = GetInterface(interfaceType);
        if (_byGrainType.TryGetValue(grainInterface.GrainType, out var existing) && existing.GrainClass != grainClass)
        {
            throw new InvalidOperationException(
                $"Grain type '{grainInterface.GrainType}' is claimed by both {existing.GrainClass.Name} and {grainClass.Name}; name one with [GrainType].");
        }

        _byGrainType[grainInterface.GrainType] = (grainInterface, grainClass);
    }

    public GrainInterface GetInterface(Type interfaceType) => _interfaces.GetOrAdd(interfaceType, static t => new GrainInterface(t));

    public bool TryGetGrainClass(string grainType, out GrainInterface grainInterface, out Type grainClass)
    {
        if (_byGrainType.TryGetValue(grainType, out var entry))
        {
            (grainInterface, grainClass) = entry;
            return true;
        }

        (grainInterface, grainClass) = (null!, null!);
        return false;
    }
}

/// <summary>Creates grain references.</summary>
public sealed class GrainFactory(GrainTypeRegistry registry, GrainCallInvoker invoker) : IGrainFactory
{
    public TGrainInterface GetGrain<TGrainInterface>(string key) where TGrainInterface : IGrainWithStringKey
    {
        ArgumentNullException.ThrowIfNull(key);
        var grainInterface = registry.GetInterface(typeof(TGrainInterface));
        var proxy = ProxyFactory<TGrainInterface>.Create();
        ((GrainReference)(object)proxy).Initialize(new GrainId(grainInterface.GrainType, key), grainInterface, invoker);
        return proxy;
    }

    /// <summary>
    /// API endpoints take a reference on every request; <see cref="DispatchProxy.Create{T, TProxy}"/> runs the generated
    /// class's constructor through reflection each time (binder, invoke stub: a few percent of a write request's CPU).
    /// Every reference of one interface is that class with the same generated state, so a reference is a shallow copy
    /// of one made once, given its own grain id.
    /// </summary>
    private static class ProxyFactory<TGrainInterface> where TGrainInterface : IGrainWithStringKey
    {
        private static readonly GrainReference s_prototype = (GrainReference)(object)DispatchProxy.Create<TGrainInterface, GrainReference>()!;

        public static TGrainInterface Create() => (TGrainInterface)(object)s_prototype.Copy();
    }
}

/// <summary>Helpers on grain references.</summary>
public static class GrainReferenceExtensions
{
    /// <summary>The id of the grain a reference addresses.</summary>
    public static GrainId GetGrainId(this IGrain grain) => grain switch
    {
        GrainReference reference => reference.GrainId,
        Grain local => local.GrainId,
        _ => throw new ArgumentException("Not a grain reference.", nameof(grain)),
    };
}

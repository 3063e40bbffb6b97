namespace OrleansMeta.Runtime;

/// <summary>
/// Names a grain type on its interface. The name is part of every grain id, of every stored state row and of every
/// silo-to-silo call, so it must never change once data exists. Without it the name is derived from the interface name:
/// <c>IBrokerGrain</c> becomes <c>broker</c>.
/// </summary>
[AttributeUsage(AttributeTargets.Interface, Inherited = false)]
public sealed class GrainTypeAttribute(string name) : Attribute
{
    public string Name { get; } = name;
}

/// <summary>
/// Marks a grain method that does not change grain state. Read-only calls may interleave with each other at await
/// points, but never with a call that is not read-only.
/// </summary>
[AttributeUsage(AttributeTargets.Method, Inherited = true)]
public sealed class ReadOnlyAttribute : Attribute;

/// <summary>
/// Asks the runtime to inject an <see cref="IPersistentState{TState}"/> into a grain constructor parameter, loaded
/// before <c>Grain.OnActivateAsync</c> runs.
/// </summary>
/// <param name="stateName">The name of the state within the grain; part of the stored row's key.</param>
/// <param name="storageName">The storage provider to use; <c>null</c> for the default one.</param>
[AttributeUsage(AttributeTargets.Parameter)]
public sealed class PersistentStateAttribute(string stateName, string? storageName = null) : Attribute
{
    public string StateName { get; } = stateName;

    public string? StorageName { get; } = storageName;
}

/// <summary>
/// Marks a grain class whose truth lives in memory (sessions kept alive by heartbeats that are never written). Such a
/// grain must have one owner at a time, so a new activation waits until no silo declared dead can still act as its
/// owner: a silo serves only while its ownership lease (its last successful heartbeat, at most
/// <c>HeartbeatStaleAfter</c> ago) lasts, and its writes are fenced by its membership row once it is Dead.
/// </summary>
[AttributeUsage(AttributeTargets.Class, Inherited = false)]
public sealed class KeepsTruthInMemoryAttribute : Attribute;

using OrleansMeta.Examples;

// dotnet run --project examples/Broker -- --id 1 [--rack a] [--bootstrap http://127.0.0.1:5100,...]
return await ExampleOptions.RunAsync(async stop =>
{
    var options = ExampleOptions.Parse(args, "id", "rack");
    using var client = options.CreateClient();
    var broker = new ExampleBroker(client, options.GetInt("id", 1), Console.Out, options.Get("rack", "") is { Length: > 0 } rack ? rack : null);
    await broker.RunAsync(stop);
});

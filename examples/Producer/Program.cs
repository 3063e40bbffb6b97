using OrleansMeta.Examples;

// dotnet run --project examples/Producer -- --topic orders [--bootstrap http://127.0.0.1:5100,...]
return await ExampleOptions.RunAsync(async stop =>
{
    var options = ExampleOptions.Parse(args, "topic");
    using var client = options.CreateClient();
    await new ExampleProducer(client, options.Get("topic", "orders"), Console.Out).RunAsync(stop);
});
